"""Company sign-in writes: the group mapping applied at each sign-in, directory re-checks, mapping edits.

The rules it keeps:

- a directory or OpenID account is linked to the Slipway user it created (``DirectoryAccount``) and to no
  other: a local account (the break-glass admin, the demo users) is never taken over by a directory
  account of the same name, and an account of one method never signs in through the other;
- at every sign-in the mapping decides the user's mapped roles afresh: memberships it made
  (``via_mapping``) follow the groups, the finance group, admin access (``is_staff``) and platform admin
  (``is_superuser``) are given and taken back only where the mapping gave them; what was given by hand
  stays. Several rows for one project give the strongest role (maintainer, approver, developer);
- an account the directory no longer finds (disabled, deleted) is deactivated and its API tokens revoked
  at the first re-check after ``SLIPWAY_DIRECTORY_RECHECK_SECONDS``; a later sign-in through the
  directory activates it again. A directory that cannot be reached changes nothing (the next request
  re-checks);
- every change is one audit event, by ``system:directory``; edits of the mapping by platform admins too.
"""
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from deployments import memberships
from deployments.choices import FINANCE_GROUP, Role
from deployments.locks import row_lock, rows_lock
from deployments.permissions import user_is_platform_admin
from paas_site.actors import DIRECTORY, Actor
from paas_site.errors import ApplicationError, NotAllowed, invalid_fields

from .. import audit
from ..choices import MappingGrant, MappingSource, SignInMethod
from ..models import ApiToken, DirectoryAccount, GroupRoleMapping
from .signin import api_tokens_revoke

RANK = {Role.DEVELOPER: 1, Role.APPROVER: 2, Role.MAINTAINER: 3}
APPROVERS_GROUP = "approvers"  # admin_access: is_staff and this group's view permissions (as the demo's approvers)
MAPPING_FIELDS = ("source", "group", "grant", "project", "role")


class AccountNotLinked(ApplicationError):
    """The user exists, but was not made by this sign-in method (a local account, or the other method)."""

    code = "account_not_linked"


@dataclass(frozen=True)
class Grants:
    roles: dict[int, str]  # project id → role
    finance: bool
    admin_access: bool
    platform_admin: bool


def grants_for(*, source: str, groups: list[str]) -> Grants:
    """What the mapping gives a member of ``groups`` signing in through ``source``."""
    rows = list(GroupRoleMapping.objects.annotate(name=Lower("group")).filter(
        source__in=[MappingSource.ANY, source], name__in={group.lower() for group in groups}))
    roles: dict[int, str] = {}
    for row in rows:
        if row.grant == MappingGrant.PROJECT_ROLE and RANK[row.role] > RANK.get(roles.get(row.project_id), 0):
            roles[row.project_id] = row.role
    kinds = {row.grant for row in rows}
    return Grants(roles=roles, finance=MappingGrant.FINANCE in kinds, admin_access=MappingGrant.ADMIN_ACCESS in kinds,
                  platform_admin=MappingGrant.PLATFORM_ADMIN in kinds)


def directory_account_check(*, user: AbstractBaseUser, source: str) -> None:
    """Refuse ``user`` to ``source`` unless that source made them (``AccountNotLinked``)."""
    account = DirectoryAccount.objects.filter(user=user).only("source").first()
    if account is None or account.source != source:
        raise AccountNotLinked(f"{user.get_username()!r} is not an account of this sign-in method.")


@transaction.atomic
def directory_sign_in(*, user: AbstractBaseUser, source: str, subject: str, groups: list[str],
                      created: bool) -> DirectoryAccount:
    """Link or confirm ``user`` as ``source``'s account ``subject`` and apply the mapping for ``groups``."""
    user = row_lock(get_user_model().objects.all(), user.pk)
    accounts = rows_lock(DirectoryAccount.objects.filter(user=user))
    if not accounts:
        if not created:  # the user existed before this sign-in made them: a local account
            raise AccountNotLinked(f"{user.get_username()!r} is a local account.")
        account = DirectoryAccount(user=user, source=source, subject=subject, checked_at=timezone.now())
    else:
        account = accounts[0]
        if account.source != source:
            raise AccountNotLinked(f"{user.get_username()!r} signs in through {account.source}, not {source}.")
        if account.subject.lower() != subject.lower():  # a username given again to someone else (DNs ignore case)
            raise AccountNotLinked(f"{user.get_username()!r} is linked to {account.subject!r}, not {subject!r}.")
    groups = sorted(set(groups), key=str.lower)
    grants = grants_for(source=source, groups=groups)
    for membership, before, after in memberships.memberships_sync_mapped(actor=DIRECTORY, user=user,
                                                                         wanted=grants.roles):
        audit.role_mapped(user=user, what=f"role in {membership.project.slug}", before=before, after=after,
                          groups=groups, project_id=membership.project_id)
    _group_apply(user, account, Group.objects.get_or_create(name=FINANCE_GROUP)[0], "granted_finance",
                 grants.finance, groups, what="finance")
    if grants.admin_access or account.granted_approvers_group:
        _group_apply(user, account, approvers_group(actor=DIRECTORY), "granted_approvers_group",
                     grants.admin_access, groups, what="approvers' admin rights")
    _flag_apply(user, account, "is_staff", "granted_admin_access", grants.admin_access or grants.platform_admin,
                groups, what="admin access")
    _flag_apply(user, account, "is_superuser", "granted_platform_admin", grants.platform_admin, groups,
                what="platform admin")
    if account.disabled_by_directory and not user.is_active:
        user.is_active = True
        audit.role_mapped(user=user, what="active", before=False, after=True, groups=groups)
    account.disabled_by_directory = False
    user.save(update_fields=["is_active", "is_staff", "is_superuser"])
    is_new = account.pk is None
    account.subject, account.groups, account.checked_at = subject, groups, timezone.now()
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError:
        raise AccountNotLinked(f"{source} account {subject!r} is linked to another user.") from None
    if is_new:
        audit.object_created(actor=DIRECTORY, obj=account)
    return account


def approvers_group(*, actor: Actor) -> Group:
    """The Django group that lets approvers sign off in the admin: they view releases and their audit trail
    (the services check the rest). Made, or its permissions set right, here (audited)."""
    group, created = Group.objects.get_or_create(name=APPROVERS_GROUP)
    before = None if created else audit.snapshot(group)
    group.permissions.set(Permission.objects.filter(content_type__app_label="workflows",
                                                    codename__in=["view_release", "view_auditevent"]))
    if created:
        audit.object_created(actor=actor, obj=group)
    elif audit.snapshot(group) != before:
        audit.object_changed(actor=actor, obj=group, before=before)
    return group


def _group_apply(user: AbstractBaseUser, account: DirectoryAccount, group: Group, granted: str, wanted: bool,
                 groups: list[str], *, what: str) -> None:
    has = user.groups.filter(pk=group.pk).exists()
    if wanted and not has:
        user.groups.add(group)
        setattr(account, granted, True)
        audit.role_mapped(user=user, what=what, before=False, after=True, groups=groups)
    elif not wanted and getattr(account, granted):
        setattr(account, granted, False)
        if has:
            user.groups.remove(group)
            audit.role_mapped(user=user, what=what, before=True, after=False, groups=groups)


def _flag_apply(user: AbstractBaseUser, account: DirectoryAccount, flag: str, granted: str, wanted: bool,
                groups: list[str], *, what: str) -> None:
    has = getattr(user, flag)
    if wanted and not has:
        setattr(user, flag, True)
        setattr(account, granted, True)
        audit.role_mapped(user=user, what=what, before=False, after=True, groups=groups)
    elif not wanted and getattr(account, granted):
        setattr(account, granted, False)
        if has:
            setattr(user, flag, False)
            audit.role_mapped(user=user, what=what, before=True, after=False, groups=groups)


def directory_account_of(user: AbstractBaseUser) -> DirectoryAccount | None:
    """The user's directory account, or ``None`` for a local account (read once per user object: Django caches it)."""
    try:
        return user.directory_account
    except DirectoryAccount.DoesNotExist:
        return None


def sign_in_method_enabled(user: AbstractBaseUser) -> bool:
    """Whether the way ``user`` signs in is turned on: their directory's or OpenID provider's, or local accounts."""
    account = directory_account_of(user)
    enabled = {SignInMethod.LDAP: settings.SLIPWAY_LDAP_ENABLED, SignInMethod.OIDC: settings.SLIPWAY_OIDC_ENABLED}
    return enabled.get(account.source if account else None, settings.SLIPWAY_LOCAL_LOGIN)


def directory_recheck_due(user: AbstractBaseUser) -> DirectoryAccount | None:
    """The user's LDAP account when its last check is older than ``SLIPWAY_DIRECTORY_RECHECK_SECONDS``."""
    if not settings.SLIPWAY_LDAP_ENABLED or not user.is_authenticated:
        return None
    account = directory_account_of(user)
    stale = timezone.now() - timedelta(seconds=settings.SLIPWAY_DIRECTORY_RECHECK_SECONDS)
    return account if account and account.source == SignInMethod.LDAP and account.checked_at < stale else None


@transaction.atomic
def directory_account_disable(*, user: AbstractBaseUser, source: str) -> None:
    """The directory does not find the account (disabled, deleted): deactivate the user, revoke their tokens."""
    user = row_lock(get_user_model().objects.all(), user.pk)
    account = rows_lock(DirectoryAccount.objects.filter(user=user))[0]
    if not user.is_active:
        return
    user.is_active = False
    user.save(update_fields=["is_active"])
    account.disabled_by_directory = True
    account.checked_at = timezone.now()
    account.save(update_fields=["disabled_by_directory", "checked_at"])
    token_ids = list(ApiToken.objects.filter(user=user).values_list("id", flat=True))
    revoked = api_tokens_revoke(actor=DIRECTORY, token_ids=token_ids, reason="its directory account is disabled")
    audit.signin_account_disabled(user=user, source=source, revoked_tokens=revoked)


# -- the mapping, edited by platform admins (admin, API) ------------------------------------------------
def _require_admin(actor: Actor) -> None:
    if not user_is_platform_admin(actor):
        raise NotAllowed("Only platform admins may change the group mapping.")


def group_mapping_check(mapping: GroupRoleMapping) -> GroupRoleMapping:
    """``mapping`` with its group trimmed, or a 400 naming each bad field (the admin form shows them too)."""
    mapping.group = (mapping.group or "").strip()
    errors: dict[str, list[str]] = {}
    if mapping.grant == MappingGrant.PROJECT_ROLE:
        if mapping.project_id is None:
            errors["project"] = ["is required for a project role."]
        if not mapping.role:
            errors["role"] = [f"is required for a project role: one of {', '.join(Role.values)}."]
    else:
        if mapping.project_id is not None:
            errors["project"] = [f"only a project role names a project, not {mapping.grant}."]
        if mapping.role:
            errors["role"] = [f"only a project role names a role, not {mapping.grant}."]
    try:
        mapping.full_clean(validate_constraints=False)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, messages)
    if errors:
        raise invalid_fields(errors)
    duplicate = GroupRoleMapping.objects.filter(source=mapping.source, group__iexact=mapping.group,
                                                grant=mapping.grant, project_id=mapping.project_id)
    if duplicate.exclude(pk=mapping.pk).exists():
        raise invalid_fields({"group": [f"a rule for {mapping.group!r} giving {mapping.grant} there exists already."]})
    return mapping


@transaction.atomic
def group_mapping_create(*, actor: Actor, **fields) -> GroupRoleMapping:
    _require_admin(actor)
    mapping = group_mapping_check(GroupRoleMapping(**{name: fields[name] for name in MAPPING_FIELDS if name in fields}))
    mapping.save()
    audit.object_created(actor=actor, obj=mapping)
    return mapping


@transaction.atomic
def group_mapping_change(*, actor: Actor, mapping_id: int, **fields) -> GroupRoleMapping:
    _require_admin(actor)
    mapping = row_lock(GroupRoleMapping.objects.all(), mapping_id)
    before = audit.snapshot(mapping)
    for name in MAPPING_FIELDS:
        if name in fields:
            setattr(mapping, name, fields[name])
    group_mapping_check(mapping).save()
    audit.object_changed(actor=actor, obj=mapping, before=before)
    return mapping


@transaction.atomic
def group_mapping_delete(*, actor: Actor, mapping_id: int) -> None:
    _require_admin(actor)
    mapping = row_lock(GroupRoleMapping.objects.all(), mapping_id)
    audit.object_deleted(actor=actor, obj=mapping, before=audit.snapshot(mapping))
    mapping.delete()
