"""Reads and visibility rules: who may see and change what.

A user sees the projects they belong to; platform admins (superusers) and the
``finance`` group read every project. ``is_staff`` only opens the admin site
(approvers sign off there) and grants nothing across projects. Anything outside a user's view is
answered with 404, so its existence is not revealed.
"""
from django.db.models import QuerySet

from .models import Application, Package, Project, ProjectMembership
from .permissions import (  # re-exported: the role lookups every selector builds on
    Action,
    User,
    project_roles,
    projects_where,
    user_is_finance,
    user_is_platform_admin,
    user_reads_all_projects,
)

__all__ = ["User", "project_roles", "user_is_finance", "user_is_platform_admin", "user_reads_all_projects"]


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
    member_of = projects_where(user, Action.READ_PACKAGES)
    return packages if member_of is None else packages.filter(project_id__in=member_of)
