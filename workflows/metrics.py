"""State figures for Prometheus, read from the database when ``/metrics`` is scraped.

Releases by state and environment, approvals pending and the oldest one's age, releases queued in
their lanes and the longest wait, the oldest release in flight, the audit trail's checkpoint age and
unanchored time, recent metering gaps, and notification delivery attempts by medium and outcome
(with the deliveries still pending): five cheap queries per scrape whatever the table sizes
(grouped counts and minimums; ``tests/paas_site/test_metrics.py`` counts them). Every web process
serves the same numbers: aggregate them with ``max``, not ``sum``. Event figures (step durations,
retries, …) are in ``paas_site.metrics``.

Other parts add figures read from their own tables with :func:`state_source` (e.g. notification
deliveries by channel and outcome).
"""
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from billing.models import MeteringGap

from . import anchors
from .choices import IN_FLIGHT, DeliveryStatus, ReleaseState
from .models import AuditEvent, DeliveryAttempt, NotificationDelivery, Release

METERING_GAP_WINDOW = timedelta(hours=24)
StateSource = Callable[[], Iterable[Metric]]
STATE_SOURCES: list[StateSource] = []


def state_source(source: StateSource) -> StateSource:
    """Serve the metric families ``source()`` returns (read at scrape time) in the web's ``/metrics`` too."""
    if source not in STATE_SOURCES:
        STATE_SOURCES.append(source)
    return source


class StateCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        now = timezone.now()
        yield from release_families(now)
        yield from audit_families(now, Path(settings.SLIPWAY_AUDIT_CHECKPOINT_DIR))
        yield metering_gaps_family(now)
        yield from notification_families(now)
        for source in STATE_SOURCES:
            yield from source()


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since else 0.0


def release_families(now: datetime) -> list[Metric]:
    releases = GaugeMetricFamily("slipway_releases", "Releases by state and environment.", labels=["state", "environment"])
    pending = GaugeMetricFamily("slipway_approvals_pending", "Releases awaiting approval.", labels=["environment"])
    pending_age = GaugeMetricFamily("slipway_approval_oldest_pending_seconds",
                                    "Age of the oldest release awaiting approval.", labels=["environment"])
    queued = GaugeMetricFamily("slipway_lane_queued_releases", "Approved releases waiting for their lane.",
                               labels=["environment"])
    wait = GaugeMetricFamily("slipway_lane_oldest_wait_seconds",
                             "How long the longest-waiting approved release has waited since approval.",
                             labels=["environment"])
    flight = GaugeMetricFamily("slipway_release_oldest_in_flight_seconds",
                               "How long the oldest release in flight (building … rolling back) has run.",
                               labels=["environment"])
    rows = (Release.objects.order_by().values("state", "environment__name")
            .annotate(count=Count("id"), filed=Min("created_at"), approved=Min("approved_at"), started=Min("started_at")))
    in_flight: dict[str, datetime | None] = {}
    for row in rows:
        state, environment = row["state"], row["environment__name"]
        releases.add_metric([state, environment], row["count"])
        if state == ReleaseState.REQUESTED:
            pending.add_metric([environment], row["count"])
            pending_age.add_metric([environment], _age(now, row["filed"]))
        elif state == ReleaseState.APPROVED:
            queued.add_metric([environment], row["count"])
            wait.add_metric([environment], _age(now, row["approved"]))
        elif state in IN_FLIGHT and row["started"]:
            oldest = in_flight.get(environment)
            in_flight[environment] = min(oldest, row["started"]) if oldest else row["started"]
    for environment, started in in_flight.items():
        flight.add_metric([environment], _age(now, started))
    return [releases, pending, pending_age, queued, wait, flight]


def audit_families(now: datetime, directory: Path) -> list[Metric]:
    """Checkpoint age, and how long the oldest event no checkpoint covers has waited (0: all covered)."""
    checkpoint = anchors.checkpoint_last(directory=directory) or {}
    covered = checkpoint.get("event_id") if isinstance(checkpoint.get("event_id"), int) else 0
    written = parse_datetime(checkpoint["written_at"]) if isinstance(checkpoint.get("written_at"), str) else None
    oldest_uncovered = AuditEvent.objects.filter(id__gt=covered).order_by("id").values_list("created_at", flat=True).first()
    unanchored = GaugeMetricFamily(
        "slipway_audit_unanchored_seconds",
        "Age of the oldest audit event that no checkpoint covers yet (0 when the newest checkpoint covers them all).",
        value=_age(now, oldest_uncovered),
    )
    families = [unanchored]
    if written:
        families.append(GaugeMetricFamily("slipway_audit_checkpoint_age_seconds",
                                          "Seconds since the newest audit checkpoint was written.",
                                          value=_age(now, written)))
    return families


def metering_gaps_family(now: datetime) -> Metric:
    family = GaugeMetricFamily("slipway_metering_gaps", "Metering runs that could not read a cluster in the last 24 hours.",
                               labels=["cluster"])
    gaps = (MeteringGap.objects.filter(sampled_at__gte=now - METERING_GAP_WINDOW).order_by()
            .values("cluster__name").annotate(count=Count("id")))
    for row in gaps:
        family.add_metric([row["cluster__name"]], row["count"])
    return family


def notification_families(now: datetime) -> list[Metric]:
    """Attempts by medium (email, console, a chat kind) and outcome, from their table; deliveries still pending.

    The attempts are a counter as long as their rows are kept (they go with their notification).
    """
    attempts = CounterMetricFamily("slipway_notification_delivery_attempts",
                                   "Notification delivery attempts by medium and outcome (delivered, retrying, failed).",
                                   labels=["medium", "outcome"])
    for row in (DeliveryAttempt.objects.order_by().values("delivery__medium", "outcome").annotate(count=Count("id"))):
        attempts.add_metric([row["delivery__medium"], row["outcome"]], row["count"])
    pending = GaugeMetricFamily("slipway_notification_deliveries_pending", "Notification deliveries not yet delivered "
                                "or given up, by medium.", labels=["medium"])
    oldest = GaugeMetricFamily("slipway_notification_oldest_pending_seconds",
                               "Age of the oldest notification delivery still pending, by medium.", labels=["medium"])
    rows = (NotificationDelivery.objects.filter(status=DeliveryStatus.PENDING).order_by().values("medium")
            .annotate(count=Count("id"), since=Min("created_at")))
    for row in rows:
        pending.add_metric([row["medium"]], row["count"])
        oldest.add_metric([row["medium"]], _age(now, row["since"]))
    return [attempts, pending, oldest]
