"""The billing API: reports (JSON and CSV), price books, budgets, and who may do what."""
import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from billing import services
from billing.models import Budget, PriceBook
from tests.billing.factories import BudgetFactory, PriceBookFactory, UsageSampleFactory
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, ProjectFactory
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db
D = Decimal
MONTHLY = "/api/v1/billing/reports/monthly/"
PRICE_BOOKS = "/api/v1/billing/price-books/"
BUDGETS = "/api/v1/billing/budgets/"


@pytest.fixture
def env():
    return EnvironmentFactory(name="dev")


@pytest.fixture
def costs(project, env):
    """March 2026: shop's api and web ran for 10 hours; another project's worker for 1 hour."""
    PriceBookFactory(environment=env, cpu_core_hour=D("0.04"), memory_gib_hour=D("0.005"))
    other = ProjectFactory(slug="bank")
    apps = [ApplicationFactory(project=project, name="api"), ApplicationFactory(project=project, name="web"),
            ApplicationFactory(project=other, name="worker")]
    start = datetime(2026, 3, 10, tzinfo=UTC)
    for app, hours in zip(apps, (10, 10, 1), strict=True):
        for hour in range(hours):
            UsageSampleFactory(application=app, environment=env, sampled_at=start + timedelta(hours=hour))
    services.cost_records_compute(day=date(2026, 3, 10))
    ProjectFactory(slug="idle", cost_center="CC-9")


def test_monthly_json_report_for_finance_has_every_project_idle_ones_at_zero(api, finance_user, costs):
    response = api.as_user(finance_user).get(MONTHLY, {"month": "2026-03"})

    assert response.status_code == 200
    body = response.json()
    assert (body["start"], body["end"], body["currency"], body["amount"]) == ("2026-03-01", "2026-03-31", "EUR", "0.53")
    projects = {p["project"]: p for p in body["projects"]}
    assert projects["idle"]["amount"] == "0.00" and projects["idle"]["environments"] == []
    assert projects["bank"]["amount"] == "0.03"
    shop = projects["shop"]
    assert shop["amount"] == "0.50" and [e["environment"] for e in shop["environments"]] == ["dev"]
    assert shop["environments"][0]["applications"] == [
        {"application": "api", "core_hours": "5.000", "gib_hours": "10.000", "amount": "0.25"},
        {"application": "web", "core_hours": "5.000", "gib_hours": "10.000", "amount": "0.25"},
    ]


def test_monthly_csv_report_has_a_header_a_row_per_application_and_a_total(api, finance_user, costs):
    response = api.as_user(finance_user).get(MONTHLY, {"month": "2026-03", "format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="slipway-costs-2026-03.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["project"], r["environment"], r["application"], r["amount"]) for r in rows] == [
        ("bank", "dev", "worker", "0.03"),
        ("idle", "", "", "0.00"),
        ("shop", "dev", "api", "0.25"),
        ("shop", "dev", "web", "0.25"),
        ("TOTAL", "", "", "0.53"),
    ]
    assert rows[1]["cost_center"] == "CC-9" and {r["currency"] for r in rows} == {"EUR"}
    assert sum(D(r["amount"]) for r in rows[:-1]) == D(rows[-1]["amount"])
    assert rows[-1]["core_hours"] == "10.500"


def test_a_member_reads_only_their_own_projects_costs(api, developer, costs):
    body = api.as_user(developer).get(MONTHLY, {"month": "2026-03"}).json()

    assert [p["project"] for p in body["projects"]] == ["shop"] and body["amount"] == "0.50"


def test_an_outsider_sees_no_project(api, outsider, costs):
    body = api.as_user(outsider).get(MONTHLY, {"month": "2026-03"}).json()

    assert body["projects"] == [] and body["amount"] == "0.00"


def test_the_range_report_covers_the_days_asked_for(api, finance_user, costs):
    client = api.as_user(finance_user)

    assert client.get("/api/v1/billing/reports/range/", {"start": "2026-03-10", "end": "2026-03-10"}).json()["amount"] == "0.53"
    assert client.get("/api/v1/billing/reports/range/", {"start": "2026-03-11", "end": "2026-03-31"}).json()["amount"] == "0.00"
    bad = client.get("/api/v1/billing/reports/range/", {"start": "2026-03-11", "end": "2026-03-01"})
    assert bad.status_code == 400 and "end" in bad.json()["extra"]["fields"]


@pytest.mark.parametrize("query", [{"month": "2026-13"}, {}, {"month": "march"}, {"month": "2026-13", "format": "csv"}])
def test_a_bad_or_missing_month_is_a_400_naming_month(api, finance_user, query):
    response = api.as_user(finance_user).get(MONTHLY, query)

    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert "month" in response.json()["extra"]["fields"] and response.json()["message"].startswith("month:")


def test_usage_without_prices_is_a_400_naming_the_environment(api, finance_user, project):
    app = ApplicationFactory(project=project, name="api")
    UsageSampleFactory(application=app, environment=EnvironmentFactory(name="prod"))
    services.cost_records_compute(day=date(2026, 3, 10))

    response = api.as_user(finance_user).get(MONTHLY, {"month": "2026-03"})

    assert response.status_code == 400
    assert response.json()["code"] == "no_price_book" and "prod" in response.json()["message"]


# -- price books ---------------------------------------------------------------------

def price_book(**fields):
    return {"name": "dev 2026", "environment": "dev", "valid_from": "2026-01-01T00:00:00Z", "currency": "EUR",
            "cpu_core_hour": "0.040000", "memory_gib_hour": "0.005000"} | fields


def test_finance_creates_a_price_book_and_it_is_audited(api, finance_user, env):
    response = api.as_user(finance_user).post(PRICE_BOOKS, price_book(), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["cpu_core_hour"] == "0.040000" and response.json()["ingress_hour"] == "0.000000"
    created = PriceBook.objects.get()
    assert AuditEvent.objects.filter(target_type="billing.pricebook", target_id=str(created.id), actor="user:money").exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cpu_core_hour": "-0.01"}, "cpu_core_hour"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "eur"}, "currency"),
        ({"valid_from": "2026-06-01T00:00:00Z", "valid_until": "2026-06-01T00:00:00Z"}, "valid_until"),
        ({"cluster": "nowhere"}, "cluster"),
        ({"environment": None}, "environment"),
    ],
)
def test_invalid_price_books_are_400_naming_the_field(api, finance_user, env, fields, field):
    response = api.as_user(finance_user).post(PRICE_BOOKS, price_book(**fields), format="json")

    assert response.status_code == 400 and field in response.json()["extra"]["fields"], response.json()
    assert not PriceBook.objects.exists()


def test_overlapping_periods_of_one_scope_are_refused(api, finance_user, env):
    client = api.as_user(finance_user)
    assert client.post(PRICE_BOOKS, price_book(valid_until="2026-07-01T00:00:00Z"), format="json").status_code == 201

    overlap = client.post(PRICE_BOOKS, price_book(name="later", valid_from="2026-06-30T12:00:00Z"), format="json")
    adjacent = client.post(PRICE_BOOKS, price_book(name="next", valid_from="2026-07-01T00:00:00Z"), format="json")
    other_scope = client.post(PRICE_BOOKS, price_book(name="cluster", environment=None, cluster=env.cluster.name),
                              format="json")

    assert overlap.status_code == 400 and overlap.json()["code"] == "overlapping_period"
    assert "valid_from" in overlap.json()["extra"]["fields"] and "dev 2026" in overlap.json()["message"]
    assert adjacent.status_code == 201 and other_scope.status_code == 201


def test_an_update_may_not_create_an_overlap_either(api, finance_user, env):
    PriceBookFactory(name="h1", environment=env, valid_until=datetime(2026, 7, 1, tzinfo=UTC))
    second = PriceBookFactory(name="h2", environment=env, valid_from=datetime(2026, 7, 1, tzinfo=UTC))

    response = api.as_user(finance_user).patch(f"{PRICE_BOOKS}{second.id}/", {"valid_from": "2026-06-01T00:00:00Z"},
                                               format="json")

    assert response.status_code == 400 and response.json()["code"] == "overlapping_period"


def test_everyone_signed_in_reads_price_books_but_only_finance_and_admins_write(api, developer, outsider, staff, env):
    PriceBookFactory(environment=env, valid_until=datetime(2027, 1, 1, tzinfo=UTC))

    assert api.as_user(outsider).get(PRICE_BOOKS).json()["count"] == 1
    assert api.as_user(developer).post(PRICE_BOOKS, price_book(), format="json").status_code == 403
    assert api.as_user(staff).post(PRICE_BOOKS, price_book(name="x", valid_from="2027-01-01T00:00:00Z"),
                                   format="json").status_code == 201


# -- budgets -------------------------------------------------------------------------

def test_finance_sets_a_budget_per_project_and_month(api, finance_user, project):
    client = api.as_user(finance_user)

    response = client.post(BUDGETS, {"project": "shop", "month": "2026-03", "amount": "500.00", "currency": "EUR"},
                           format="json")
    again = client.post(BUDGETS, {"project": "shop", "month": "2026-03", "amount": "9.00", "currency": "EUR"},
                        format="json")

    assert response.status_code == 201 and response.json()["month"] == "2026-03"
    assert Budget.objects.get().month == date(2026, 3, 1)
    assert again.status_code == 400
    bad = client.post(BUDGETS, {"project": "shop", "month": "2026-04", "amount": "-1", "currency": "EUR"}, format="json")
    assert bad.status_code == 400 and "amount" in bad.json()["extra"]["fields"]


def test_budget_visibility_and_writes(api, developer, outsider, finance_user, project):
    mine = BudgetFactory(project=project)
    theirs = BudgetFactory(project=ProjectFactory(slug="bank"))

    assert [b["project"] for b in api.as_user(developer).get(BUDGETS).json()["results"]] == ["shop"]
    assert api.as_user(developer).get(f"{BUDGETS}{theirs.id}/").status_code == 404
    assert api.as_user(outsider).get(f"{BUDGETS}{mine.id}/").status_code == 404
    assert api.as_user(developer).patch(f"{BUDGETS}{mine.id}/", {"amount": "1.00"}, format="json").status_code == 403
    assert api.as_user(developer).post(
        BUDGETS, {"project": "shop", "month": "2026-05", "amount": "1.00", "currency": "EUR"}, format="json"
    ).status_code == 403
    assert api.as_user(finance_user).get(BUDGETS).json()["count"] == 2
    assert api.as_user(finance_user).patch(f"{BUDGETS}{mine.id}/", {"amount": "1.00"}, format="json").status_code == 200


def test_list_endpoints_do_not_query_per_row(api, finance_user, django_assert_max_num_queries):
    for slug in ("a", "b", "c", "d"):
        budget = BudgetFactory(project=ProjectFactory(slug=slug))
        services.budgets_check(month=budget.month)  # no spending: no alerts, but the prefetch still runs
        PriceBookFactory(environment=EnvironmentFactory(name=f"env-{slug}"))
    client = api.as_user(finance_user)

    with django_assert_max_num_queries(6):
        assert client.get(BUDGETS).json()["count"] == 4
    with django_assert_max_num_queries(5):
        assert client.get(PRICE_BOOKS).json()["count"] == 4
