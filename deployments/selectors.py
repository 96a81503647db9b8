"""Reads and visibility rules: who may see and change what.

A user sees the projects they belong to; platform admins (superusers) and the
``finance`` group read every project. ``is_staff`` only opens the admin site
(approvers sign off there) and grants nothing across projects. Anything outside a user's view is
answered with 404, so its existence is not revealed.
"""
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from paas_site.errors import NotAllowed

from .choices import FINANCE_GROUP, Role
from .models import Application, Package, Project, ProjectMembership

User = AbstractBaseUser | AnonymousUser


def user_is_finance(user: User) -> bool:
    if not user.is_authenticated:
        return False
    if not hasattr(user, "_slipway_is_finance"):
        user._slipway_is_finance = user.groups.filter(name=FINANCE_GROUP).exists()
    return user._slipway_is_finance


def user_is_platform_admin(user: User) -> bool:
    return user.is_authenticated and user.is_superuser


def user_reads_all_projects(user: User) -> bool:
    return user.is_authenticated and (user_is_platform_admin(user) or user_is_finance(user))


def project_roles(user: User) -> dict[int, str]:
    """Project id → the user's role there; cached on the user for one request."""
    if not user.is_authenticated:
        return {}
    if not hasattr(user, "_slipway_project_roles"):
        user._slipway_project_roles = dict(
            ProjectMembership.objects.filter(user=user).values_list("project_id", "role")
        )
    return user._slipway_project_roles


def project_list(*, user: User) -> QuerySet[Project]:
    projects = Project.objects.all()
    return projects if user_reads_all_projects(user) else projects.filter(id__in=project_roles(user).keys())


def membership_list(*, user: User) -> QuerySet[ProjectMembership]:
    memberships = ProjectMembership.objects.select_related("project", "user")
    return memberships if user_reads_all_projects(user) else memberships.filter(project_id__in=project_roles(user).keys())


def application_list(*, user: User) -> QuerySet[Application]:
    applications = Application.objects.select_related("project", "base_image").prefetch_related(
        "allowed_callers", "uses_middleware__application"
    )
    if user_reads_all_projects(user):
        return applications
    return applications.filter(project_id__in=project_roles(user).keys())


def package_list(*, user: User) -> QuerySet[Package]:
    """Uploaded packages of the user's projects (members only: a package is the project's code)."""
    packages = Package.objects.select_related("project", "uploaded_by")
    if user_is_platform_admin(user):
        return packages
    member_of = [project for project, role in project_roles(user).items() if role in PROJECT_MEMBERS]
    return packages.filter(project_id__in=member_of)


def project_require_role(*, user: User, project: Project, roles: set[str], action: str) -> None:
    """Raise ``NotAllowed`` unless the user is a platform admin or holds one of ``roles`` in ``project``."""
    if user_is_platform_admin(user):
        return
    if project_roles(user).get(project.id) not in roles:
        allowed = " or ".join(sorted(roles))
        raise NotAllowed(f"Only a project {allowed} of {project.slug!r} may {action}.")


APPLICATION_EDITORS = {Role.DEVELOPER, Role.MAINTAINER}
PROJECT_MANAGERS = {Role.MAINTAINER}
PROJECT_MEMBERS = {Role.DEVELOPER, Role.APPROVER, Role.MAINTAINER}
