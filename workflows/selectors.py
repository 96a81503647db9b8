"""Reads of the release process, with the same visibility as projects."""
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from deployments.models import Revision
from deployments.selectors import project_roles, user_reads_all_projects

from .choices import Decision
from .models import Approval, AuditEvent, Release


def release_list(*, user) -> QuerySet[Release]:
    releases = release_queryset()
    if user_reads_all_projects(user):
        return releases
    return releases.filter(application__project_id__in=project_roles(user).keys())


def release_queryset() -> QuerySet[Release]:
    """Releases with what their pages show, in a constant number of queries."""
    # A correlated subquery rather than Count() over a join: no GROUP BY, so a page computes it for its
    # rows only and the paginator's COUNT(*) leaves it out (at 100k releases the GROUP BY cost 60-80 ms).
    approvals = Approval.objects.filter(
        release=OuterRef("pk"), decision=Decision.APPROVE, voided_at__isnull=True
    ).order_by().values("release").annotate(n=Count("id")).values("n")
    return Release.objects.select_related(
        "application__project", "environment", "requested_by", "revision"
    ).annotate(approvals_given=Coalesce(Subquery(approvals), 0)).order_by("-id")


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
