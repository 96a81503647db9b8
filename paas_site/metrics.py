"""Prometheus figures of events, counted where they happen; and the one way they are exposed.

Events (step durations, retries, reaper actions, call errors by target, webhook deliveries, lane
waits) are counters and histograms here, recorded by the code where they happen, in whichever
process that is. State (releases by state, approvals pending, checkpoint age, metering gaps) is read
from the database at scrape time by ``workflows.metrics`` and served by the web's ``/metrics`` only.

Processes: a server or worker with several processes (gunicorn workers, Celery's prefork pool) runs
with ``PROMETHEUS_MULTIPROC_DIR`` set to a directory of its own, emptied before it starts; each
process writes its figures there and an exposition sums them (prometheus_client's multiprocess
mode). A Celery worker serves its figures on ``SLIPWAY_WORKER_METRICS_PORT`` (``paas_site.worker``),
so workers on other machines are scraped one by one, like web pods.

Every exposition asks for ``Authorization: Bearer <SLIPWAY_METRICS_TOKEN>`` (compared in constant
time), unless ``SLIPWAY_METRICS_OPEN`` says a network policy keeps strangers out.
"""
import hmac
import os
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.registry import Collector

from paas_site.errors import ExternalError, TransientError

STEP_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
WAIT_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 3 * 24 * 3600)

STEP_DURATION = Histogram(
    "slipway_step_duration_seconds", "Duration of one attempt of a release step, by step and outcome.",
    ["step", "outcome"], buckets=STEP_BUCKETS,
)
STEP_RETRIES = Counter("slipway_step_retries", "Step attempts that hit a transient error and were retried.", ["step"])
REAPER_ACTIONS = Counter(
    "slipway_reaper_actions", "What the reaper did: re-drove a step whose worker died, or failed a stuck release.",
    ["action"],
)
CALL_ERRORS = Counter(
    "slipway_external_call_errors",
    "Failed calls to a cluster, registry or DNS provider, by target; kind transient (unreachable, 5xx, 429) or permanent.",
    ["system", "target", "kind"],
)
WEBHOOK_DELIVERIES = Counter(
    "slipway_webhook_deliveries", "Project webhook delivery attempts, by outcome (delivered, retrying, failed).",
    ["outcome"],
)
LANE_WAIT = Histogram(
    "slipway_lane_wait_seconds", "Time from approval to start of a release (queue, freeze, schedule), by environment.",
    ["environment"], buckets=WAIT_BUCKETS,
)

# the 0.0.4 text format, which Prometheus 2 parses (prometheus_client 0.26 calls 1.0.0 its latest)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@contextmanager
def call_errors_counted(system: str, target: str, *, ignore: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Count an ``ExternalError`` leaving the block (except ``ignore``d answers such as "not found") and re-raise it."""
    try:
        yield
    except ExternalError as exc:
        if not isinstance(exc, ignore):
            CALL_ERRORS.labels(system, target, "transient" if isinstance(exc, TransientError) else "permanent").inc()
        raise


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or ""


def events_registry() -> Collector:
    """This process's event figures, or, in multiprocess mode, those of every process writing the directory."""
    if not multiprocess_dir():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def exposition(*collectors: Collector) -> bytes:
    """The text exposition of the event figures followed by ``collectors`` (each with names of its own)."""
    parts = [generate_latest(events_registry())]
    if collectors:
        registry = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            registry.register(collector)
        parts.append(generate_latest(registry))
    return b"".join(parts)


def scrape_refusal(authorization: str) -> tuple[int, str] | None:
    """Why a scrape with this ``Authorization`` header is refused (status, reason), or None to serve it."""
    token = settings.SLIPWAY_METRICS_TOKEN
    if not token:
        if settings.SLIPWAY_METRICS_OPEN:
            return None
        return 403, "metrics are closed: set SLIPWAY_METRICS_TOKEN, or SLIPWAY_METRICS_OPEN when a network policy guards them"
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return 401, "send Authorization: Bearer <SLIPWAY_METRICS_TOKEN>"
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return 403, "wrong metrics token"
    return None

