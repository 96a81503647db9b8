"""Every write of project memberships (API, admin, commands, the group mapping): add, change, remove; audited.

A membership never moves: its project and user are fixed once it exists (remove it and add another).
Adding, changing or removing one needs the right to manage memberships in its project, checked here.
The group mapping (``memberships_sync_mapped``) writes only memberships it made (``via_mapping``): a
membership given by hand is never changed or removed by it, and changing a mapped one by hand makes it
hand-made.
"""
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from paas_site.actors import Actor, SystemActor
from paas_site.errors import invalid_fields

from . import changes
from .choices import Role
from .locks import rows_lock
from .models import Project, ProjectMembership
from .permissions import Action, project_require

FIXED = "a membership cannot move to another {what}; remove it and add one instead."


def membership_create(*, actor: Actor, project: Project, user: AbstractBaseUser, role: str) -> ProjectMembership:
    project_require(actor, Action.MANAGE_MEMBERSHIPS, project)
    _check_role(role)
    try:
        with transaction.atomic():
            membership = ProjectMembership.objects.create(project=project, user=user, role=role)
            changes.recorder().object_created(actor=actor, obj=membership)
    except IntegrityError:
        raise invalid_fields({"user": [f"{user.get_username()} is already a member of {project.slug}."]}) from None
    return membership


@transaction.atomic
def membership_change(
    *, actor: Actor, membership_id: int, role: str | None = None, project: Project | None = None,
    user: AbstractBaseUser | None = None,
) -> ProjectMembership:
    """Change a membership's role. ``project`` and ``user`` may be given only as they are (a PATCH echoes them)."""
    membership = ProjectMembership.objects.select_for_update(of=("self",)).select_related("project", "user").get(
        id=membership_id
    )
    project_require(actor, Action.MANAGE_MEMBERSHIPS, membership.project)
    if project is not None and project.pk != membership.project_id:
        project_require(actor, Action.MANAGE_MEMBERSHIPS, project)  # 403 where it may not go; 400 otherwise
        raise invalid_fields({"project": [FIXED.format(what="project")]})
    if user is not None and user.pk != membership.user_id:
        raise invalid_fields({"user": [FIXED.format(what="user")]})
    if role is None or role == membership.role:
        return membership
    _check_role(role)
    before = changes.recorder().snapshot(membership)
    membership.role = role
    membership.via_mapping = False  # a maintainer decided this role: the group mapping leaves it alone now
    membership.save(update_fields=["role", "via_mapping"])
    changes.recorder().object_changed(actor=actor, obj=membership, before=before)
    return membership


@transaction.atomic
def membership_delete(*, actor: Actor, membership_id: int) -> None:
    membership = ProjectMembership.objects.select_for_update(of=("self",)).select_related("project", "user").get(
        id=membership_id
    )
    project_require(actor, Action.MANAGE_MEMBERSHIPS, membership.project)
    changes.recorder().object_deleted(actor=actor, obj=membership, before=changes.recorder().snapshot(membership))
    membership.delete()


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise invalid_fields({"role": [f"must be one of {', '.join(Role.values)}."]})


def memberships_sync_mapped(
    *, actor: SystemActor, user: AbstractBaseUser, wanted: dict[int, str],
) -> list[tuple[ProjectMembership, str | None, str | None]]:
    """Make ``user``'s mapped memberships exactly ``wanted`` (project id → role), leaving hand-made ones alone.

    Only the group mapping calls this, as a ``SystemActor`` (it acts on the directory's word, not on a
    user's right). Returns (membership, role before, role after) for each change; the caller audits them.
    """
    if not isinstance(actor, SystemActor):
        raise TypeError("Only the group mapping (a SystemActor) syncs mapped memberships.")
    changed: list[tuple[ProjectMembership, str | None, str | None]] = []
    current = {m.project_id: m for m in rows_lock(ProjectMembership.objects.filter(user=user))}
    for project_id, membership in current.items():
        if membership.via_mapping and project_id not in wanted:
            changed.append((membership, membership.role, None))
            membership.delete()
        elif membership.via_mapping and membership.role != wanted[project_id]:
            changed.append((membership, membership.role, wanted[project_id]))
            membership.role = wanted[project_id]
            membership.save(update_fields=["role"])
    for project_id, role in sorted(wanted.items()):
        if project_id not in current:
            _check_role(role)
            membership = ProjectMembership.objects.create(project_id=project_id, user=user, role=role, via_mapping=True)
            changed.append((membership, None, role))
    return changed
