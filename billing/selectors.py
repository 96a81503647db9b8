"""Reads and visibility of billing data.

Finance and platform admins read every project's costs and budgets; project
members read their own project's; everyone else sees nothing (404). Price
books are reference data every signed-in user may read.
"""
import calendar
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from deployments.models import Environment
from deployments.selectors import User, project_list, user_reads_all_projects
from paas_site.errors import ApplicationError

from .models import Budget, BudgetAlert, CostRecord, MeteringGap, PriceBook, UsageSample
from .pricing import round_money
from .reports import ProjectInfo, RatedRow, Report, report_build

MAX_REPORT_DAYS = 366


def user_manages_billing(user: User) -> bool:
    """Finance and platform admins set prices and budgets."""
    return user_reads_all_projects(user)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The instants a calendar day (in the site's time zone) starts and ends."""
    zone = timezone.get_default_timezone()
    return (datetime.combine(day, time.min, tzinfo=zone), datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone))


def month_last_day(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


# -- price books ---------------------------------------------------------------------


def price_book_list(*, user: User) -> QuerySet[PriceBook]:
    return PriceBook.objects.select_related("environment", "cluster")


def price_book_in_force(*, environment: Environment, at: datetime) -> PriceBook | None:
    """The environment's own price book at ``at``, else its cluster's."""
    covering = PriceBook.objects.filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at), valid_from__lte=at)
    return (
        covering.filter(environment=environment).first()
        or covering.filter(cluster_id=environment.cluster_id).first()
    )


def price_book_overlapping(*, price_book: PriceBook) -> PriceBook | None:
    """Another price book of the same scope whose period overlaps ``price_book``'s."""
    scope = (
        Q(environment_id=price_book.environment_id) if price_book.environment_id else Q(cluster_id=price_book.cluster_id)
    )
    others = PriceBook.objects.filter(scope).exclude(pk=price_book.pk).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gt=price_book.valid_from)
    )
    if price_book.valid_until is not None:
        others = others.filter(valid_from__lt=price_book.valid_until)
    return others.order_by("valid_from").first()


# -- budgets -------------------------------------------------------------------------


def budget_list(*, user: User) -> QuerySet[Budget]:
    budgets = Budget.objects.select_related("project")
    if user_reads_all_projects(user):
        return budgets
    return budgets.filter(project__in=project_list(user=user))


def budget_alerts_pending_notification() -> QuerySet[BudgetAlert]:
    """Alerts whose project has not been told yet (the workflows side sends the webhooks)."""
    return BudgetAlert.objects.filter(notified_at__isnull=True).select_related("budget__project").order_by("id")


def budget_alert_payload(alert: BudgetAlert) -> dict[str, Any]:
    budget = alert.budget
    return {
        "event": "budget.threshold_reached",
        "budget": {
            "project": budget.project.slug,
            "month": budget.month.strftime("%Y-%m"),
            "amount": str(alert.budget_amount),
            "currency": alert.currency,
        },
        "threshold": alert.threshold,
        "spent": str(round_money(alert.spent)),
        "sent_at": timezone.now().isoformat(),
    }


# -- usage ---------------------------------------------------------------------------


def usage_latest(*, application_id: int, environment_id: int, since: datetime | None = None) -> UsageSample | None:
    samples = UsageSample.objects.filter(application_id=application_id, environment_id=environment_id)
    if since is not None:
        samples = samples.filter(sampled_at__gte=since)
    return (
        samples
        .order_by("-sampled_at")
        .first()
    )


# -- reports -------------------------------------------------------------------------


def monthly_report(*, user: User, month: date) -> Report:
    """Costs of ``month`` (any day of it) for every project ``user`` may see."""
    first = month.replace(day=1)
    return cost_report(user=user, start=first, end=month_last_day(first))


def cost_report(*, user: User, start: date, end: date) -> Report:
    """Costs from ``start`` to ``end`` (both included) for every project ``user`` may see.

    Raises ``ApplicationError`` when usage in the period has no price (naming
    the environments) or when it was priced in more than one currency.
    """
    if end < start:
        raise ApplicationError("end must not be before start.", extra={"fields": {"end": ["must not be before start."]}})
    if (end - start).days >= MAX_REPORT_DAYS:
        message = f"a report covers at most {MAX_REPORT_DAYS} days."
        raise ApplicationError(message, extra={"fields": {"end": [message]}})
    projects = list(project_list(user=user).values_list("id", "slug", "name", "cost_center"))
    records = CostRecord.objects.filter(day__gte=start, day__lte=end, project_id__in=[p[0] for p in projects])

    unpriced = sorted(set(records.filter(price_book__isnull=True).values_list("environment__name", flat=True)))
    if unpriced:
        names = ", ".join(unpriced)
        raise ApplicationError(
            f"No price book was in force for usage in environment(s) {names} between {start} and {end}: "
            "add a price book covering that period (for the environment or its cluster) and re-rate.",
            code="no_price_book",
            extra={"environments": unpriced},
        )
    currencies = sorted(set(records.values_list("currency", flat=True)))
    if len(currencies) > 1:
        raise ApplicationError(
            f"Costs between {start} and {end} were priced in several currencies ({', '.join(currencies)}); "
            "report a period with a single currency.",
            code="mixed_currencies",
        )
    rows = [
        RatedRow(
            project_id=row["project_id"], environment=row["environment__name"], application=row["application__name"],
            core_hours=row["core_hours"], gib_hours=row["gib_hours"], amount=row["amount"],
        )
        for row in records.values("project_id", "environment__name", "application__name")
        .annotate(core_hours=Sum("core_hours"), gib_hours=Sum("gib_hours"), amount=Sum("amount"))
        .order_by()
    ]
    first_instant, _ = day_bounds(start)
    _, last_instant = day_bounds(end)
    gaps = dict(
        MeteringGap.objects.filter(sampled_at__gte=first_instant, sampled_at__lt=last_instant)
        .values_list("cluster__name")
        .annotate(runs=Count("id"))
        .order_by()
    )
    return report_build(
        start=start, end=end, currency=currencies[0] if currencies else None,
        projects=[ProjectInfo(id=p[0], slug=p[1], name=p[2], cost_center=p[3]) for p in projects],
        rows=rows, metering_gaps=gaps,
        demo_data=UsageSample.objects.filter(demo=True, sampled_at__gte=first_instant, sampled_at__lt=last_instant,
                                             project_id__in=[p[0] for p in projects]).exists(),
    )


def cost_per_day(*, user: User, start: date, end: date, project_ids: list[int] | None = None) -> list[tuple[date, Decimal]]:
    """Priced cost of each day from ``start`` to ``end`` (days without costs at zero) over the projects ``user`` sees."""
    projects = project_list(user=user)
    if project_ids is not None:
        projects = projects.filter(id__in=project_ids)
    sums = dict(
        CostRecord.objects.filter(day__gte=start, day__lte=end, project_id__in=projects.values("id"), amount__isnull=False)
        .values_list("day").annotate(amount=Sum("amount")).order_by()
    )
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    return [(day, round_money(sums.get(day, Decimal(0)))) for day in days]
