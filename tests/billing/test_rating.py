"""Rating samples into cost records, budgets and the cost impact of a release, on PostgreSQL."""
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import selectors, services
from billing.models import BudgetAlert, CostRecord
from deployments.models import Revision
from paas_site.errors import ApplicationError
from tests.billing.factories import BudgetFactory, PriceBookFactory, UsageSampleFactory
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, deploy_spec
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db
D = Decimal
DAY = date(2026, 3, 10)
MIDNIGHT = datetime(2026, 3, 10, tzinfo=UTC)
NOON = MIDNIGHT + timedelta(hours=12)


@pytest.fixture
def env():
    return EnvironmentFactory(name="dev")


@pytest.fixture
def app(project):
    return ApplicationFactory(project=project, name="api")


def hourly_samples(app, env, *, hours=24, start=MIDNIGHT, **fields):
    return [
        UsageSampleFactory(application=app, environment=env, sampled_at=start + timedelta(hours=h), **fields)
        for h in range(hours)
    ]


def rows(day=DAY):
    return sorted(
        CostRecord.objects.filter(day=day).values_list(
            "application__name", "price_book__name", "samples", "core_hours", "gib_hours", "ingress_hours", "amount",
            "currency",
        ),
        key=str,
    )


def test_a_price_change_at_noon_prices_each_half_of_the_day_with_its_own_prices(app, env):
    # given: 0.5 core and 1 GiB all day; prices rise at noon
    PriceBookFactory(name="winter", environment=env, valid_from=MIDNIGHT - timedelta(days=30), valid_until=NOON,
                     cpu_core_hour=D("0.04"), memory_gib_hour=D("0.005"))
    PriceBookFactory(name="spring", environment=env, valid_from=NOON, cpu_core_hour=D("0.05"), memory_gib_hour=D("0.006"))
    hourly_samples(app, env)

    # when
    count = services.cost_records_compute(day=DAY)

    # then: 12 h × (0.5 × 0.04 + 1 × 0.005) and 12 h × (0.5 × 0.05 + 1 × 0.006)
    assert count == 2
    assert rows() == [
        ("api", "spring", 12, D("6"), D("12"), D("0"), D("0.372"), "EUR"),
        ("api", "winter", 12, D("6"), D("12"), D("0"), D("0.300"), "EUR"),
    ]
    report = selectors.monthly_report(user=_finance(), month=DAY)
    assert report.amount == D("0.67") and report.currency == "EUR"


def test_rating_matches_the_pure_formula_for_five_minute_samples(app, env):
    PriceBookFactory(environment=env, cpu_core_hour=D("0.043"), memory_gib_hour=D("0.0051"), ingress_hour=D("0.01"))
    for minute in range(0, 60, 5):
        UsageSampleFactory(application=app, environment=env, sampled_at=MIDNIGHT + timedelta(minutes=minute),
                           interval_seconds=300, cpu_cores=D("0.1"), memory_gib=D("0.125"), exposed=True)

    services.cost_records_compute(day=DAY)

    from billing.pricing import Prices, Usage, rate

    prices = Prices(currency="EUR", cpu_core_hour=D("0.043"), memory_gib_hour=D("0.0051"), ingress_hour=D("0.01"))
    expected = rate(Usage(cpu_cores=D("0.1"), memory_gib=D("0.125"), seconds=D(3600), exposed=True), prices)
    record = CostRecord.objects.get()
    assert record.amount == expected.amount.quantize(D("1e-12"))
    assert (record.core_hours, record.gib_hours, record.ingress_hours) == (D("0.1"), D("0.125"), D(1))


def test_re_rating_a_day_gives_the_same_rows(app, env):
    PriceBookFactory(environment=env)
    hourly_samples(app, env)
    services.cost_records_compute(day=DAY)
    first = rows()

    services.cost_records_compute(day=DAY)

    assert rows() == first and CostRecord.objects.count() == 1


def test_re_rating_after_new_samples_replaces_the_day(app, env):
    PriceBookFactory(environment=env)
    hourly_samples(app, env, hours=12)
    services.cost_records_compute(day=DAY)

    hourly_samples(app, env, hours=12, start=NOON)
    services.cost_records_compute(day=DAY)

    assert [row[2:] for row in rows()] == [(24, D("12"), D("24"), D("0"), D("0.6"), "EUR")]


def test_only_the_days_samples_are_rated(app, env):
    PriceBookFactory(environment=env)
    hourly_samples(app, env, hours=3, start=MIDNIGHT - timedelta(hours=1))

    services.cost_records_compute(day=DAY)

    assert CostRecord.objects.get().samples == 2


def test_an_environment_price_book_wins_over_its_clusters(app, env):
    PriceBookFactory(name="cluster-wide", environment=None, cluster=env.cluster, cpu_core_hour=D("1"))
    PriceBookFactory(name="dev prices", environment=env)
    other = EnvironmentFactory(name="test", cluster=env.cluster)
    hourly_samples(app, env, hours=1)
    hourly_samples(app, other, hours=1)

    services.cost_records_compute(day=DAY)

    assert dict(CostRecord.objects.values_list("environment__name", "price_book__name")) == {
        "dev": "dev prices", "test": "cluster-wide",
    }


def test_usage_without_a_price_book_is_not_zero_but_refused_by_the_report(app, env):
    prod = EnvironmentFactory(name="prod")
    PriceBookFactory(environment=env)
    hourly_samples(app, env, hours=1)
    hourly_samples(app, prod, hours=1)

    services.cost_records_compute(day=DAY)

    unpriced = CostRecord.objects.get(environment=prod)
    assert unpriced.amount is None and unpriced.price_book is None and unpriced.core_hours == D("0.5")
    with pytest.raises(ApplicationError, match="prod") as error:
        selectors.monthly_report(user=_finance(), month=DAY)
    assert error.value.code == "no_price_book" and error.value.extra["environments"] == ["prod"]


def test_budget_alerts_fire_once_per_threshold(app, env, project):
    # given: a 1.00 EUR budget; 0.85 spent
    budget = BudgetFactory(project=project, month=date(2026, 3, 1), amount=D("1.00"))
    PriceBookFactory(environment=env, cpu_core_hour=D("0.1"), memory_gib_hour=D("0.035"))  # 0.085 per hour
    hourly_samples(app, env, hours=10)
    services.cost_records_compute(day=DAY)

    # when / then: 80 % fires, once
    first = services.budgets_check(month=DAY)
    assert [(a.threshold, a.spent) for a in first] == [(80, D("0.85"))]
    assert services.budgets_check(month=DAY) == []

    # when the spending passes 100 %, only the new threshold fires
    hourly_samples(app, env, hours=2, start=NOON)
    services.cost_records_compute(day=DAY)
    assert [a.threshold for a in services.budgets_check(month=DAY)] == [100]
    assert services.budgets_check(month=DAY) == []
    assert BudgetAlert.objects.filter(budget=budget).count() == 2
    events = AuditEvent.objects.filter(target_type="billing.budgetalert", actor="system:billing")
    assert events.count() == 2 and set(events.values_list("project_id", flat=True)) == {project.id}
    # the workflows side picks them up for the project's webhooks
    pending = list(selectors.budget_alerts_pending_notification())
    assert selectors.budget_alert_payload(pending[0])["budget"]["project"] == "shop"
    services.budget_alert_mark_notified(alert_id=pending[0].id)
    assert selectors.budget_alerts_pending_notification().count() == 1


def test_budgets_ignore_costs_in_another_currency(app, env, project):
    BudgetFactory(project=project, amount=D("0.01"), currency="USD")
    PriceBookFactory(environment=env)
    hourly_samples(app, env)
    services.cost_records_compute(day=DAY)

    assert services.budgets_check(month=DAY) == []


def test_release_cost_impact_compares_a_month_of_the_new_replicas_with_what_runs(env, project):
    app = ApplicationFactory(project=project, name="web", cpu_request="250m", memory_request="512Mi", replicas=2)
    PriceBookFactory(environment=env, valid_from=datetime(2020, 1, 1, tzinfo=UTC), cpu_core_hour=D("0.04"),
                     memory_gib_hour=D("0.005"))
    # what runs: a live revision, metered since it was recorded
    Revision.objects.create(application=app, environment=env, number=1, replicas=1, manifests=[], manifests_digest="d")
    UsageSampleFactory(application=app, environment=env, sampled_at=timezone.now(), replicas=1,
                       cpu_cores=D("0.25"), memory_gib=D("0.5"))

    impact = services.release_cost_impact(application=app, environment=env, spec=deploy_spec(app, env), replicas=4)

    # 730 h × (cores × 0.04 + GiB × 0.005)
    assert impact["priced"] and impact["currency"] == "EUR" and impact["hours"] == 730
    assert impact["current"] | {"monthly_cost": None} == {"replicas": 1, "cpu_cores": D("0.25"), "memory_gib": D("0.5"),
                                                          "monthly_cost": None}
    assert impact["current"]["monthly_cost"] == D("9.13")  # 730 × 0.0125 = 9.125
    assert impact["proposed"]["monthly_cost"] == D("36.50")  # 730 × 0.05
    assert impact["delta"] == D("27.37")


def test_release_cost_impact_without_prices_says_so(env, project):
    app = ApplicationFactory(project=project, name="web")

    impact = services.release_cost_impact(application=app, environment=env, spec=deploy_spec(app, env))

    assert not impact["priced"] and impact["delta"] is None and "dev" in impact["message"]
    assert impact["current"]["replicas"] == 0 and impact["proposed"]["replicas"] == 1


def _finance():
    from tests.deployments.factories import UserFactory

    return UserFactory(username="money", finance=True)
