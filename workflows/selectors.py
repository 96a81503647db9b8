"""Reads of the release process, with the same visibility as projects."""
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from deployments.models import Application, Revision
from deployments.permissions import APPROVERS, Action
from deployments.selectors import project_roles, user_reads_all_projects
from dns.choices import ADDRESS_TYPES
from dns.models import Record

from .choices import Decision, ReleaseState
from .models import Approval, AuditEvent, Release
from .permissions import release_may


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
        "application__project", "environment", "requested_by", "revision", "package"
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


def releases_awaiting_decision(*, user, releases: QuerySet[Release] | None = None) -> QuerySet[Release]:
    """Requested releases of the user's projects that they may still approve or reject.

    Not their own release where the environment forbids self-approval, and not
    one they already decided on (an approval voided by a change asks again).
    """
    releases = release_queryset() if releases is None else releases
    deciding = [project for project, role in project_roles(user).items() if role in APPROVERS]
    decided = Approval.objects.filter(release=OuterRef("pk"), approver=user, voided_at__isnull=True)
    return (
        releases.filter(state=ReleaseState.REQUESTED, application__project_id__in=deciding)
        .exclude(requested_by=user, environment__allow_self_approval=False)
        .exclude(Exists(decided))
    )


@dataclass(frozen=True)
class LaneStatus:
    """What runs in one (application, environment) lane and its latest release."""

    revision: Revision | None  # what runs now (None: nothing, or decommissioned)
    version: str  # the version that revision runs ("" when unknown)
    latest_release: Release | None
    dns_name: str


def lane_overview(*, applications: Iterable[Application]) -> dict[tuple[int, int], LaneStatus]:
    """The lanes of ``applications`` that ever had a release or a revision, in a constant number of queries.

    What runs there in numbers (replicas) is the cluster's to say: ``deployments.services.replica_figures``.
    """
    ids = [application.id for application in applications]
    same_lane = {"application": OuterRef("application"), "environment": OuterRef("environment")}
    newest_number = Revision.objects.filter(**same_lane).order_by("-number").values("number")[:1]
    revisions = {
        (revision.application_id, revision.environment_id): revision
        for revision in Revision.objects.filter(application_id__in=ids, number=Subquery(newest_number))
        .defer("manifests")
    }
    # A rollback revision re-applies its source's artifact: the release of either tells the version.
    producers = {revision.source_id or revision.id for revision in revisions.values()}
    versions = dict(Release.objects.filter(revision_id__in=producers).values_list("revision_id", "version"))
    newest_release = Release.objects.filter(**same_lane).order_by("-id").values("id")[:1]
    releases = {
        (release.application_id, release.environment_id): release
        for release in Release.objects.filter(application_id__in=ids, id=Subquery(newest_release)).order_by()
    }
    names = dict(
        ((record.application_id, record.environment_id), record.name.rstrip("."))
        for record in Record.objects.filter(application_id__in=ids, type__in=ADDRESS_TYPES).only(
            "application_id", "environment_id", "name")
    )
    lanes = {}
    for key in revisions.keys() | releases.keys():
        revision = revisions.get(key)
        live = revision if revision is not None and revision.is_live else None
        lanes[key] = LaneStatus(
            revision=live,
            version=versions.get(live.source_id or live.id, "") if live else "",
            latest_release=releases.get(key),
            dns_name=names.get(key, "") if live else "",
        )
    return lanes


def release_deciders(release: Release) -> list:
    """Who may decide ``release`` now and has not yet: its project's approvers and maintainers that
    ``release_may`` lets decide (no requester, nor whoever changed it, where self-approval is off),
    minus the requester in any case and everyone whose decision still stands."""
    decided = Approval.objects.filter(release=release, voided_at__isnull=True).values("approver_id")
    candidates = (get_user_model().objects.filter(
        is_active=True, memberships__project_id=release.application.project_id, memberships__role__in=APPROVERS)
        .exclude(id__in=decided).order_by("username"))
    if release.requested_by_id:
        candidates = candidates.exclude(id=release.requested_by_id)
    return [user for user in candidates if release_may(user, Action.DECIDE, release)]
