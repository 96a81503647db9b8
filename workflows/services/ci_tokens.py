"""CI tokens: created by a maintainer who then owns them, used by the CI hook as that owner, revoked or expired.

Only a token's SHA-256 is stored; the token itself is returned once, by ``ci_token_create``. A token files
releases as its owner, so it can do no more than the owner may do in its project at the time it is used.
"""
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from deployments.models import Application, Project
from deployments.permissions import Action, project_may, project_require
from paas_site.actors import Actor, actor_user
from paas_site.errors import NotAllowed, NotAuthenticated, invalid_fields

from .. import audit
from ..models import CiToken, Release
from .releases import release_file

PREFIX_LENGTH = 8


@transaction.atomic
def ci_token_create(*, actor: Actor, project: Project, name: str, expires_in_days: int | None = None
                    ) -> tuple[CiToken, str]:
    """A new token owned by ``actor``, and the token itself (shown once, never stored)."""
    project_require(actor, Action.MANAGE_CI_TOKENS, project)
    longest = settings.SLIPWAY_CI_TOKEN_MAX_DAYS
    days = settings.SLIPWAY_CI_TOKEN_DEFAULT_DAYS if expires_in_days is None else expires_in_days
    if not 1 <= days <= longest:
        raise invalid_fields({"expires_in_days": [f"must be between 1 and {longest} days."]})
    name = (name or "").strip()
    if not name or len(name) > CiToken._meta.get_field("name").max_length:
        raise invalid_fields({"name": ["required, at most 100 characters."]})
    token = secrets.token_urlsafe(32)
    ci_token = CiToken.objects.create(
        project=project, name=name, owner=actor_user(actor), token_hash=CiToken.hash_of(token),
        prefix=token[:PREFIX_LENGTH], expires_at=timezone.now() + timedelta(days=days),
    )
    audit.ci_token_created(actor=actor, token=ci_token)
    return ci_token, token


@transaction.atomic
def ci_token_revoke(*, actor: Actor, token_id: int) -> CiToken:
    """Revoke a token (its project's maintainers, or its owner); revoking it again changes nothing."""
    ci_token = CiToken.objects.select_for_update(of=("self",)).select_related("project", "owner").get(id=token_id)
    user = actor_user(actor)
    owner = user is not None and ci_token.owner_id == user.pk and project_may(actor, Action.VIEW, ci_token.project)
    if not owner:
        project_require(actor, Action.MANAGE_CI_TOKENS, ci_token.project)
    if ci_token.revoked_at is None:
        ci_token.revoked_at = timezone.now()
        ci_token.save(update_fields=["revoked_at"])
        audit.ci_token_revoked(actor=actor, token=ci_token)
    return ci_token


def ci_token_authenticate(*, project_slug: str, token: str) -> CiToken:
    """The usable token of ``project_slug`` matching ``token``.

    Unknown, revoked, expired and ownerless tokens are all ``NotAuthenticated`` with one message, so the
    answer reveals nothing (a 401).
    """
    ci_token = CiToken.objects.select_related("project", "owner").filter(
        project__slug=project_slug, token_hash=CiToken.hash_of(token)
    ).first() if token else None
    if ci_token is None or not ci_token.is_usable(timezone.now()):
        raise NotAuthenticated("A valid CI token for this project is required (Authorization: Bearer <token>).")
    return ci_token


def ci_token_release_file(*, ci_token: CiToken, application: Application, **release: Any) -> Release:
    """File a release as the token's owner (``requested_via="ci"``) and record the token's use: both or neither.

    The token is checked again under a lock, so a release never follows a revocation that committed first;
    the owner's right to file releases is checked by ``release_file`` as for any other request.
    """
    if application.project_id != ci_token.project_id:
        raise NotAllowed("A CI token files releases of its own project only.")
    with transaction.atomic():
        locked = CiToken.objects.select_for_update().get(id=ci_token.id)
        now = timezone.now()
        if not locked.is_usable(now):
            raise NotAuthenticated("A valid CI token for this project is required (Authorization: Bearer <token>).")
        locked.last_used_at = now
        locked.save(update_fields=["last_used_at"])
        return release_file(actor=ci_token.owner, application=application, via="ci", **release)
