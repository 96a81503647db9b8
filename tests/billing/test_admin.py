"""The admin: cost records read-only with totals, CSV export; price books through the services."""
import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from billing import services
from billing.models import CostRecord, PriceBook
from tests.billing.factories import BudgetFactory, PriceBookFactory, UsageSampleFactory
from tests.deployments.factories import EnvironmentFactory
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated(project):
    env = EnvironmentFactory(name="dev")
    PriceBookFactory(environment=env)
    UsageSampleFactory(environment=env, application__project=project)
    services.cost_records_compute(day=date(2026, 3, 10))


def test_cost_record_changelist_shows_totals_and_is_read_only(client, staff, rated):
    client.force_login(staff)

    response = client.get("/admin/billing/costrecord/")

    assert response.status_code == 200
    assert response.context["totals"] == [
        {"currency": "EUR", "amount": Decimal("0.025"), "core_hours": Decimal("0.5"), "gib_hours": Decimal("1"),
         "records": 1}
    ]
    assert b'id="cost-totals"' in response.content
    assert client.get("/admin/billing/costrecord/add/").status_code == 403


def test_export_csv_action(client, staff, rated):
    client.force_login(staff)

    response = client.post("/admin/billing/costrecord/", {
        "action": "export_csv", "_selected_action": list(CostRecord.objects.values_list("id", flat=True)),
    })

    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["day"], r["project"], r["amount"], r["currency"]) for r in rows] == [
        ("2026-03-10", "shop", "0.025000000000", "EUR")
    ]


def test_admin_price_book_form_refuses_overlaps_and_audits_saves(client, staff):
    env = EnvironmentFactory(name="dev")
    PriceBookFactory(name="existing", environment=env)
    client.force_login(staff)
    form = {"name": "new", "environment": env.id, "valid_from_0": "2026-06-01", "valid_from_1": "00:00:00",
            "currency": "EUR", "cpu_core_hour": "1", "memory_gib_hour": "1", "storage_gib_hour": "0", "ingress_hour": "0"}

    refused = client.post("/admin/billing/pricebook/add/", form)
    PriceBook.objects.filter(name="existing").delete()
    accepted = client.post("/admin/billing/pricebook/add/", form)

    assert refused.status_code == 200 and "overlaps price book" in refused.content.decode()
    assert accepted.status_code == 302 and PriceBook.objects.get().name == "new"
    assert AuditEvent.objects.filter(target_type="billing.pricebook", actor="user:ops").exists()


@pytest.mark.parametrize("kind", ["pricebook", "budget"])
def test_delete_selected_goes_through_the_audited_service(client, staff, project, kind):
    rows = ([PriceBookFactory(), PriceBookFactory()] if kind == "pricebook"
            else [BudgetFactory(project=project), BudgetFactory(project=project, month=date(2026, 4, 1))])
    client.force_login(staff)

    response = client.post(f"/admin/billing/{kind}/", {
        "action": "delete_selected", "_selected_action": [row.pk for row in rows], "post": "yes"})

    assert response.status_code == 302 and not type(rows[0]).objects.exists()
    deleted = AuditEvent.objects.filter(action="object.deleted", target_type=f"billing.{kind}")
    assert sorted(deleted.values_list("target_id", flat=True)) == sorted(str(row.pk) for row in rows)
    assert set(deleted.values_list("actor", flat=True)) == {f"user:{staff.username}"}
