"""Every write of project memberships (API, admin, commands): add, change the role, remove; each audited.

A membership never moves: its project and user are fixed once it exists (remove it and add another).
Adding, changing or removing one needs the right to manage memberships in its project, checked here.
"""
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from paas_site.actors import Actor
from paas_site.errors import invalid_fields

from . import changes
from .choices import Role
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
    membership.save(update_fields=["role"])
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
