"""Sign-in writes: sign-ins recorded, API tokens issued and revoked, lockouts recorded and lifted — each audited.

A token's value exists only in the answer that issues it; the database keeps knox's SHA-512 digest. Every
token expires: ``SLIPWAY_API_TOKEN_SECONDS`` unless asked otherwise, never later than
``SLIPWAY_API_TOKEN_MAX_SECONDS``. A password change revokes every token of the user (sessions end by
themselves: Django keys each session to the password hash).
"""
from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from deployments.locks import rows_lock
from paas_site.errors import NotFound, invalid_fields

from .. import audit
from ..choices import SignInMethod
from ..models import ApiToken, DirectoryAccount

# Which backend signed a user in says which method they used (``user.backend``, set by ``authenticate``).
BACKEND_METHODS = {
    "django.contrib.auth.backends.ModelBackend": SignInMethod.LOCAL,
    "workflows.directory.ldap.DirectoryLDAPBackend": SignInMethod.LDAP,
    "workflows.directory.oidc.DirectoryOIDCBackend": SignInMethod.OIDC,
}


@transaction.atomic
def signin_record(*, user: AbstractBaseUser) -> None:
    """Audit a sign-in (console, admin, API token) with its method and, for a directory, the groups it saw."""
    method = BACKEND_METHODS.get(getattr(user, "backend", ""), SignInMethod.LOCAL)
    account = DirectoryAccount.objects.filter(user=user).first() if method != SignInMethod.LOCAL else None
    audit.signin_succeeded(user=user, method=method, groups=account.groups if account else None)


def signin_logged_in(sender, request, user: AbstractBaseUser, **kwargs) -> None:
    """Django's ``user_logged_in`` signal: every session sign-in, whichever page or method."""
    signin_record(user=user)


def api_token_lifetime(*, seconds: int | None) -> timedelta:
    """The lifetime asked for, or the default; a 400 naming ``expires_in`` past the maximum."""
    maximum = settings.SLIPWAY_API_TOKEN_MAX_SECONDS
    if seconds is None:
        return timedelta(seconds=min(settings.SLIPWAY_API_TOKEN_SECONDS, maximum))
    if not 60 <= seconds <= maximum:
        raise invalid_fields({"expires_in": [f"must be between 60 and {maximum} seconds."]})
    return timedelta(seconds=seconds)


@transaction.atomic
def api_token_issue(*, user: AbstractBaseUser, name: str, expires_in: int | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the token, which is never readable again."""
    name = (name or "").strip()
    if not name:
        raise invalid_fields({"name": ["may not be blank."]})
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise invalid_fields({"name": ["is longer than 100 characters."]})
    token, value = ApiToken.objects.create(user=user, expiry=api_token_lifetime(seconds=expires_in), name=name)
    audit.api_token_issued(actor=user, token=token)
    return token, value


@transaction.atomic
def api_token_revoke(*, actor: AbstractBaseUser, token_id: int) -> ApiToken:
    """Revoke one of ``actor``'s own tokens (another user's is not found, not forbidden)."""
    tokens = rows_lock(ApiToken.objects.select_related("user").filter(id=token_id, user=actor))
    if not tokens:
        raise NotFound(f"You have no API token {token_id}.")
    token = tokens[0]
    audit.api_token_revoked(actor=actor, token=token, reason="revoked by its owner")
    token.delete()
    return token


@transaction.atomic
def api_tokens_revoke(*, actor: AbstractBaseUser, token_ids: list[int], reason: str) -> int:
    """Revoke the given tokens, whoever holds them (a platform admin, or a password change)."""
    tokens = rows_lock(ApiToken.objects.select_related("user").filter(id__in=token_ids))
    for token in tokens:
        audit.api_token_revoked(actor=actor, token=token, reason=reason)
    ApiToken.objects.filter(id__in=[token.id for token in tokens]).delete()
    return len(tokens)


@transaction.atomic
def user_password_changed(*, user: AbstractBaseUser) -> int:
    """Sign ``user`` out everywhere: every API token is revoked; sessions end on their own (Django checks
    each against the password hash). Returns how many tokens were revoked."""
    token_ids = list(ApiToken.objects.filter(user=user).values_list("id", flat=True))
    return api_tokens_revoke(actor=user, token_ids=token_ids, reason="its owner's password changed")


@transaction.atomic
def signin_lockout_record(*, username: str | None, ip_address: str | None, rules: list[str], failures: int) -> None:
    """Audit a lockout that just began; the newest matching attempt row stands for it."""
    attempt = (AccessAttempt.objects.filter(username=username, ip_address=ip_address).order_by("-attempt_time")
               .first())
    if attempt is not None:
        audit.signin_locked_out(attempt=attempt, rules=rules, failures=failures)


@transaction.atomic
def signin_unlock(*, actor: AbstractBaseUser, attempt_ids: list[int]) -> int:
    """Forget the failed attempts of the given rows (the admin's unlock); returns how many were unlocked."""
    attempts = rows_lock(AccessAttempt.objects.filter(id__in=attempt_ids))
    for attempt in attempts:
        audit.signin_unlocked(actor=actor, attempt=attempt)
    AccessAttempt.objects.filter(id__in=[attempt.id for attempt in attempts]).delete()
    return len(attempts)
