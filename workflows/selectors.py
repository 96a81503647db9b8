"""Reads of the release process, with the same visibility as projects."""
from django.db.models import Count, Q, QuerySet

from deployments.models import Revision
from deployments.selectors import project_roles, user_reads_all_projects

from .choices import Decision
from .models import AuditEvent, Release


def release_list(*, user) -> QuerySet[Release]:
    releases = release_queryset()
    if user_reads_all_projects(user):
        return releases
    return releases.filter(application__project_id__in=project_roles(user).keys())


def release_queryset() -> QuerySet[Release]:
    """Releases with what their pages show, in a constant number of queries."""
    return Release.objects.select_related(
        "application__project", "environment", "requested_by", "revision"
    ).annotate(
        approvals_given=Count(
            "approvals", filter=Q(approvals__decision=Decision.APPROVE, approvals__voided_at__isnull=True)
        )
    ).order_by("-id")


def release_of_revision(revision: Revision | None) -> Release | None:
    """The release whose artifact and config a revision runs.

    A rollback records a revision that re-applies an earlier one (its
    ``source``); follow that back to the release that produced it.
    """
    seen: set[int] = set()
    while revision is not None and revision.id not in seen:
        seen.add(revision.id)
        release = Release.objects.filter(revision=revision).first()
        if release is not None:
            return release
        revision = revision.source
    return None


def audit_event_list(*, user) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if user_reads_all_projects(user):
        return events
    return events.filter(project_id__in=project_roles(user).keys())
