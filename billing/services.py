"""Every write of billing: price books, budgets, metering, rating, budget alerts.

Billing may import ``deployments`` but never ``workflows``: audit events go
through ``deployments.changes.recorder()``, and budget webhooks are sent by
the workflows side from :func:`billing.selectors.budget_alerts_pending_notification`.
"""
import logging
import zlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from deployments import changes
from deployments.locks import row_lock
from deployments.manifests import ENVIRONMENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, PROJECT_LABEL
from deployments.models import Application, Cluster, Environment
from deployments.permissions import Action, platform_require, project_require, project_require_each
from deployments.services import cluster_client, revision_live
from deployments.specs import DeploySpec
from deployments.validators import parse_cpu, parse_memory
from paas_site.actors import BILLING, Actor
from paas_site.errors import ApplicationError, ExternalError

from . import pricing, selectors
from .choices import BudgetThreshold
from .models import Budget, BudgetAlert, CostRecord, MeteringGap, PriceBook, UsageSample

logger = logging.getLogger(__name__)

DEFAULT_METERING_INTERVAL_SECONDS = 300


# -- price books and budgets ---------------------------------------------------------


@transaction.atomic
def price_book_create(*, actor: Actor, data: dict[str, Any]) -> PriceBook:
    platform_require(actor, Action.MANAGE_PRICES)
    price_book = PriceBook(**data)
    _price_book_check(price_book)
    price_book.save()
    changes.recorder().object_created(actor=actor, obj=price_book)
    return price_book


@transaction.atomic
def price_book_update(*, actor: Actor, price_book_id: int, data: dict[str, Any]) -> PriceBook:
    """Changing prices changes nothing already rated: re-rate the days concerned with ``cost_records_compute``."""
    platform_require(actor, Action.MANAGE_PRICES)
    price_book = row_lock(PriceBook.objects.all(), price_book_id)
    before = changes.recorder().snapshot(price_book)
    for name, value in data.items():
        setattr(price_book, name, value)
    _price_book_check(price_book)
    price_book.save()
    changes.recorder().object_changed(actor=actor, obj=price_book, before=before)
    return price_book


@transaction.atomic
def price_book_delete(*, actor: Actor, price_book_id: int) -> None:
    """Refused (``ProtectedError`` → 409) once cost records were rated with it."""
    platform_require(actor, Action.MANAGE_PRICES)
    price_book = row_lock(PriceBook.objects.all(), price_book_id)
    changes.recorder().object_deleted(actor=actor, obj=price_book, before=changes.recorder().snapshot(price_book))
    price_book.delete()


def _price_book_check(price_book: PriceBook) -> None:
    price_book.full_clean()
    # Serialise writers of one scope, so two overlapping books cannot both pass the check (FOR NO KEY UPDATE:
    # a plain FOR UPDATE of the shared row would block, and deadlock with, a release filed in it).
    if price_book.environment_id:
        row_lock(Environment.objects.all(), price_book.environment_id)
    else:
        row_lock(Cluster.objects.all(), price_book.cluster_id)
    other = selectors.price_book_overlapping(price_book=price_book)
    if other is not None:
        until = f"until {other.valid_until:%Y-%m-%d %H:%M}" if other.valid_until else "open-ended"
        message = (
            f"overlaps price book {other.name!r} of {other.scope_label} "
            f"(from {other.valid_from:%Y-%m-%d %H:%M}, {until}); periods of one scope must not overlap."
        )
        raise ApplicationError(
            f"valid_from: {message}", code="overlapping_period",
            extra={"fields": {"valid_from": [message], "valid_until": [message]}},
        )


@transaction.atomic
def budget_create(*, actor: Actor, data: dict[str, Any]) -> Budget:
    budget = Budget(**data)
    if budget.project_id is None:
        platform_require(actor, Action.MANAGE_BUDGETS)
    else:
        project_require(actor, Action.MANAGE_BUDGETS, budget.project)
    budget.full_clean()
    budget.save()
    changes.recorder().object_created(actor=actor, obj=budget)
    return budget


@transaction.atomic
def budget_update(*, actor: Actor, budget_id: int, data: dict[str, Any]) -> Budget:
    budget = row_lock(Budget.objects.select_related("project"), budget_id)
    project_require_each(actor, Action.MANAGE_BUDGETS, [budget.project, data.get("project")])
    before = changes.recorder().snapshot(budget)
    for name, value in data.items():
        setattr(budget, name, value)
    budget.full_clean()
    budget.save()
    changes.recorder().object_changed(actor=actor, obj=budget, before=before)
    return budget


@transaction.atomic
def budget_delete(*, actor: Actor, budget_id: int) -> None:
    budget = row_lock(Budget.objects.select_related("project"), budget_id)
    project_require(actor, Action.MANAGE_BUDGETS, budget.project)
    changes.deletion_record(actor=actor, obj=budget)  # and its alerts
    budget.delete()


# -- metering ------------------------------------------------------------------------


def metering_interval_seconds() -> int:
    return int(getattr(settings, "SLIPWAY_METERING_INTERVAL_SECONDS", DEFAULT_METERING_INTERVAL_SECONDS))


def usage_meter(*, now: datetime | None = None) -> dict[str, Any]:
    """Record what every Slipway-managed Deployment of every cluster requests right now.

    One ``UsageSample`` per Deployment, covering the metering interval; a
    cluster that cannot be read gets a ``MeteringGap`` instead, so missing
    data never reads as zero usage. Deployments whose labels name no known
    project, environment or application are skipped and logged.
    """
    sampled_at = (now or timezone.now()).replace(microsecond=0)
    interval = metering_interval_seconds()
    applications = {(a.project.slug, a.name): a for a in Application.objects.select_related("project")}
    environments = {e.name: e for e in Environment.objects.all()}
    result: dict[str, Any] = {"sampled_at": sampled_at.isoformat(), "samples": 0, "skipped": 0, "gaps": []}
    for cluster in Cluster.objects.all():
        try:
            deployments = cluster_client(cluster).list_deployments(f"{MANAGED_BY_LABEL}={MANAGED_BY}")
        except ExternalError as exc:
            logger.warning("metering: %s", exc.message)
            MeteringGap.objects.create(cluster=cluster, sampled_at=sampled_at, interval_seconds=interval, reason=exc.message)
            result["gaps"].append(cluster.name)
            continue
        samples = []
        for deployment in deployments:
            sample = _sample_of(deployment, cluster, applications, environments, sampled_at, interval)
            if sample is None:
                result["skipped"] += 1
            else:
                samples.append(sample)
        # A re-delivered task for the same instant adds nothing twice.
        UsageSample.objects.bulk_create(samples, ignore_conflicts=True)
        result["samples"] += len(samples)
    return result


def _sample_of(
    deployment: dict[str, Any], cluster: Cluster, applications: dict[tuple[str, str], Application],
    environments: dict[str, Environment], sampled_at: datetime, interval: int,
) -> UsageSample | None:
    metadata = deployment.get("metadata", {})
    labels = metadata.get("labels") or {}
    where = f"Deployment {metadata.get('namespace')}/{metadata.get('name')} in cluster {cluster.name}"
    application = applications.get((labels.get(PROJECT_LABEL), labels.get(NAME_LABEL)))
    environment = environments.get(labels.get(ENVIRONMENT_LABEL))
    if application is None or environment is None:
        logger.warning(
            "metering: skipping %s: unknown project/application %s/%s or environment %s", where,
            labels.get(PROJECT_LABEL), labels.get(NAME_LABEL), labels.get(ENVIRONMENT_LABEL),
        )
        return None
    try:
        replicas, cpu, memory = deployment_requests(deployment)
    except (ValidationError, TypeError, ValueError) as exc:  # a hand-edited object must not stop the others
        logger.warning("metering: skipping %s: unreadable resource requests: %s", where, exc)
        return None
    return UsageSample(
        cluster=cluster, project_id=application.project_id, environment=environment, application=application,
        sampled_at=sampled_at, interval_seconds=interval, replicas=replicas,
        cpu_cores=cpu * replicas, memory_gib=pricing.gib(memory * replicas), exposed=application.exposed,
    )


def deployment_requests(deployment: dict[str, Any]) -> tuple[int, Decimal, Decimal]:
    """A Deployment's replicas and what each replica requests: (replicas, cores, memory bytes)."""
    spec = deployment.get("spec") or {}
    cpu = memory = Decimal(0)
    replicas = int(spec.get("replicas", 1))
    for container in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += parse_cpu(str(requests["cpu"])) if "cpu" in requests else 0
        memory += parse_memory(str(requests["memory"])) if "memory" in requests else 0
    return replicas, cpu, memory


DEMO_REPLICAS_PEAK = 3  # in business hours (08:00-18:00 UTC, Monday to Friday) at most this many replicas more


def usage_demo_backfill(*, lanes: list[tuple[Application, Environment]], days: int = 30,
                        now: datetime | None = None) -> int:
    """Make up ``days`` of plausible hourly usage for ``lanes`` and rate it: the demo's month of costs.

    Samples are what metering would record for the application's requests, more replicas in business
    hours, and are marked ``demo`` (reports and the costs page say so). Running it again replaces the
    demo samples of the period (real samples are kept) and re-rates those days. Only for demos.
    """
    if not settings.DEBUG:
        raise ApplicationError("demo usage is made up: it is backfilled only with DEBUG on.", code="demo_only")
    end = (now or timezone.now()).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    hours = [start + timedelta(hours=n) for n in range(days * 24)]
    samples = []
    for application, environment in lanes:
        cpu, memory = parse_cpu(application.cpu_request), parse_memory(application.memory_request)
        base = max(1, application.replicas if environment.name == "prod" else 1)
        for at in hours:
            busy = at.weekday() < 5 and 8 <= at.hour < 18
            # a deterministic wobble per lane and hour, so each run makes the same month
            wobble = zlib.crc32(f"{application.name}/{environment.name}/{at:%d %H}".encode()) if busy else 0
            extra = wobble % (DEMO_REPLICAS_PEAK + 1)
            replicas = base + extra
            samples.append(UsageSample(
                cluster_id=environment.cluster_id, project_id=application.project_id, environment=environment,
                application=application, sampled_at=at, interval_seconds=3600, replicas=replicas,
                cpu_cores=cpu * replicas, memory_gib=pricing.gib(memory * replicas), exposed=application.exposed, demo=True,
            ))
    with transaction.atomic():
        UsageSample.objects.filter(demo=True, sampled_at__gte=start, sampled_at__lt=end).delete()
        UsageSample.objects.bulk_create(samples, ignore_conflicts=True, batch_size=2000)
    day, last = timezone.localdate(start), timezone.localdate(end)
    while day <= last:
        cost_records_compute(day=day)
        day += timedelta(days=1)
    return len(samples)


# -- rating --------------------------------------------------------------------------

_RATE_DAY_SQL = """
INSERT INTO {cost} (project_id, environment_id, application_id, day, price_book_id, currency, samples,
                    core_hours, gib_hours, ingress_hours, amount, computed_at)
SELECT s.project_id, s.environment_id, s.application_id, %s, b.id, COALESCE(b.currency, ''), COUNT(*),
       CAST(SUM(s.cpu_cores * s.interval_seconds) AS NUMERIC(40, 18)) / 3600,
       CAST(SUM(s.memory_gib * s.interval_seconds) AS NUMERIC(40, 18)) / 3600,
       CAST(SUM(CASE WHEN s.exposed THEN s.interval_seconds ELSE 0 END) AS NUMERIC(40, 18)) / 3600,
       CAST(SUM(s.cpu_cores * s.interval_seconds * b.cpu_core_hour
                + s.memory_gib * s.interval_seconds * b.memory_gib_hour
                + CASE WHEN s.exposed THEN s.interval_seconds * b.ingress_hour ELSE 0 END) AS NUMERIC(40, 18)) / 3600,
       %s
FROM (
    SELECT u.project_id, u.environment_id, u.application_id, u.cpu_cores, u.memory_gib, u.interval_seconds, u.exposed,
           COALESCE(
               (SELECT p.id FROM {book} p
                 WHERE p.environment_id = u.environment_id AND p.valid_from <= u.sampled_at
                   AND (p.valid_until IS NULL OR p.valid_until > u.sampled_at)
                 ORDER BY p.valid_from DESC LIMIT 1),
               (SELECT p.id FROM {book} p
                 WHERE p.cluster_id = u.cluster_id AND p.valid_from <= u.sampled_at
                   AND (p.valid_until IS NULL OR p.valid_until > u.sampled_at)
                 ORDER BY p.valid_from DESC LIMIT 1)
           ) AS price_book_id
      FROM {sample} u
     WHERE u.sampled_at >= %s AND u.sampled_at < %s
) s
LEFT JOIN {book} b ON b.id = s.price_book_id
GROUP BY s.project_id, s.environment_id, s.application_id, b.id, b.currency
"""


@transaction.atomic
def cost_records_compute(*, day: date) -> int:
    """Rate one day's samples into ``CostRecord`` rows; returns how many rows the day has.

    One set-based statement prices every sample with the price book in force
    at its time (the environment's, else its cluster's) and sums per
    application, environment and price book. The day's rows are replaced in
    the same transaction, so re-rating gives the same rows. Samples no price
    book covers become rows without an amount, which reports refuse to
    present as zero.
    """
    start, end = selectors.day_bounds(day)
    CostRecord.objects.filter(day=day).delete()
    sql = _RATE_DAY_SQL.format(
        cost=connection.ops.quote_name(CostRecord._meta.db_table),
        book=connection.ops.quote_name(PriceBook._meta.db_table),
        sample=connection.ops.quote_name(UsageSample._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [day, timezone.now(), start, end])
        return cursor.rowcount


def costs_refresh(*, now: datetime | None = None) -> dict[str, Any]:
    """The periodic job: re-rate yesterday and today, then check this month's budgets (and last month's, on the 1st)."""
    today = timezone.localdate(now or timezone.now())
    yesterday = today - timedelta(days=1)
    rated = {day.isoformat(): cost_records_compute(day=day) for day in (yesterday, today)}
    alerts = []
    for month in sorted({yesterday.replace(day=1), today.replace(day=1)}):
        alerts += budgets_check(month=month)
    return {"rated": rated, "alerts": [alert.id for alert in alerts]}


# -- budgets -------------------------------------------------------------------------


def budgets_check(*, month: date) -> list[BudgetAlert]:
    """Record a ``BudgetAlert`` for each threshold a budget of ``month`` reached; each fires once.

    Returns the alerts created by this call. Spending counts the month's
    rated costs in the budget's currency.
    """
    month = month.replace(day=1)
    spent = {
        (row["project_id"], row["currency"]): row["spent"]
        for row in CostRecord.objects.filter(
            day__gte=month, day__lte=selectors.month_last_day(month), amount__isnull=False
        )
        .values("project_id", "currency")
        .annotate(spent=Sum("amount"))
        .order_by()
    }
    created = []
    for budget in Budget.objects.filter(month=month).select_related("project"):
        amount = spent.get((budget.project_id, budget.currency), Decimal(0))
        for threshold in BudgetThreshold:
            if amount * 100 >= budget.amount * threshold.value:
                alert = _budget_alert_record(budget=budget, threshold=threshold.value, spent=amount)
                if alert is not None:
                    created.append(alert)
    return created


@transaction.atomic
def _budget_alert_record(*, budget: Budget, threshold: int, spent: Decimal) -> BudgetAlert | None:
    alert, created = BudgetAlert.objects.get_or_create(
        budget=budget, threshold=threshold,
        defaults={"spent": spent, "budget_amount": budget.amount, "currency": budget.currency},
    )
    if not created:
        return None
    changes.recorder().object_created(actor=BILLING, obj=alert)
    return alert


def budget_alert_mark_notified(*, alert_id: int) -> None:
    BudgetAlert.objects.filter(id=alert_id, notified_at__isnull=True).update(notified_at=timezone.now())


# -- cost impact of a release ----------------------------------------------------------


def release_cost_impact(
    *, application: Application, environment: Environment, spec: DeploySpec, replicas: int | None = None
) -> dict[str, Any]:
    """Monthly cost (730 h) of ``replicas`` × the requests of a release's frozen spec, against what runs now.

    The proposal comes from the spec (what approvers approve, not the live
    application); "now" is what :func:`usage_running` finds; both are priced
    at the prices in force now. Without a price book, ``priced`` is false and
    the amounts are ``None``.
    """
    replicas = spec.replicas if replicas is None else replicas
    proposed = pricing.monthly_usage(
        cpu_per_replica=parse_cpu(spec.cpu_request), memory_bytes_per_replica=parse_memory(spec.memory_request),
        replicas=replicas, exposed=spec.exposed,
    )
    running_replicas, current = usage_running(application=application, environment=environment)
    book = selectors.price_book_in_force(environment=environment, at=timezone.now())
    impact: dict[str, Any] = {
        "priced": book is not None,
        "currency": book.currency if book else None,
        "price_book": book.name if book else None,
        "hours": pricing.HOURS_PER_MONTH,
        "current": {"replicas": running_replicas, "cpu_cores": current.cpu_cores,
                    "memory_gib": current.memory_gib, "monthly_cost": None},
        "proposed": {"replicas": replicas, "cpu_cores": proposed.cpu_cores, "memory_gib": proposed.memory_gib,
                     "monthly_cost": None},
        "delta": None,
    }
    if book is None:
        impact["message"] = f"No price book is in force for environment {environment.name} or its cluster."
        return impact
    prices = prices_of(book)
    now_cost = pricing.round_money(pricing.rate(current, prices).amount)
    new_cost = pricing.round_money(pricing.rate(proposed, prices).amount)
    impact["current"]["monthly_cost"] = now_cost
    impact["proposed"]["monthly_cost"] = new_cost
    impact["delta"] = new_cost - now_cost
    return impact


def usage_running(*, application: Application, environment: Environment) -> tuple[int, pricing.Usage]:
    """The replicas running now and a 730-hour month of what they request.

    That is the latest sample metered since the live revision was recorded,
    else (not metered since the deploy) that revision's Deployment as applied;
    nothing when no revision is live (never deployed, or decommissioned).
    Samples older than the live revision describe what ran before it, or what
    was removed since, and must not count as "now".
    """
    live = revision_live(application=application, environment=environment)
    latest = live and selectors.usage_latest(application_id=application.id, environment_id=environment.id,
                                             since=live.created_at)
    if latest:
        month = pricing.HOURS_PER_MONTH * pricing.SECONDS_PER_HOUR
        return latest.replicas, pricing.Usage(cpu_cores=latest.cpu_cores, memory_gib=latest.memory_gib, seconds=month,
                                              exposed=latest.exposed and latest.replicas > 0)
    deployment = next((obj for obj in live.manifests if obj.get("kind") == "Deployment"), None) if live else None
    running, cpu, memory = deployment_requests(deployment) if deployment else (0, Decimal(0), Decimal(0))
    exposed = any(obj.get("kind") == "Ingress" for obj in live.manifests) if live else False
    return running, pricing.monthly_usage(cpu_per_replica=cpu, memory_bytes_per_replica=memory, replicas=running,
                                          exposed=exposed)


def prices_of(book: PriceBook) -> pricing.Prices:
    return pricing.Prices(
        currency=book.currency, cpu_core_hour=book.cpu_core_hour, memory_gib_hour=book.memory_gib_hour,
        ingress_hour=book.ingress_hour, storage_gib_hour=book.storage_gib_hour,
    )

