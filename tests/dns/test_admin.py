import pytest

from dns import services
from dns.admin import EnvironmentZoneForm, ZoneForm
from dns.models import Record, Zone
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory
from tests.dns.factories import EnvironmentZoneFactory, ZoneFactory

pytestmark = pytest.mark.django_db

API_KEY = "stored-key-never-shown"


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def pdns_zone_row(db):
    return ZoneFactory(name="internal.example.", provider="powerdns", api_url="http://127.0.0.1:8081", api_key=API_KEY)


def test_the_zone_page_never_shows_the_api_key(admin_client, pdns_zone_row):
    response = admin_client.get(f"/admin/dns/zone/{pdns_zone_row.pk}/change/")

    assert response.status_code == 200
    assert API_KEY not in response.content.decode()


def test_an_empty_api_key_field_keeps_the_stored_key_and_a_new_one_replaces_it(pdns_zone_row):
    data = {"name": "internal.example.", "provider": "powerdns", "api_url": "http://127.0.0.1:8081",
            "server_id": "localhost", "api_key": "", "default_ttl": 120, "description": ""}

    form = ZoneForm(data=data, instance=pdns_zone_row)
    assert form.is_valid(), form.errors
    form.save()
    assert Zone.objects.get().api_key == API_KEY

    form = ZoneForm(data={**data, "api_key": "rotated"}, instance=Zone.objects.get())
    assert form.is_valid(), form.errors
    form.save()
    assert Zone.objects.get().api_key == "rotated"


def test_attaching_a_zone_that_would_give_two_applications_one_name_is_refused(project):
    zone = ZoneFactory(name="apps.example.")
    prod, staging = EnvironmentFactory(name="prod"), EnvironmentFactory(name="staging")
    EnvironmentZoneFactory(environment=prod, zone=zone)
    ApplicationFactory(project=project, name="api")

    same = EnvironmentZoneForm(
        data={"environment": staging.pk, "zone": zone.pk, "name_pattern": "{application}.{project}.{zone}"}
    )
    apart = EnvironmentZoneForm(
        data={"environment": staging.pk, "zone": zone.pk, "name_pattern": "{application}.{project}.{environment}.{zone}"}
    )

    assert not same.is_valid()
    assert "api.shop.apps.example. for shop/api in prod and shop/api in staging" in str(same.errors)
    assert apart.is_valid(), apart.errors


def test_a_bad_pattern_is_refused_by_the_form(db):
    form = EnvironmentZoneForm(data={
        "environment": EnvironmentFactory().pk, "zone": ZoneFactory().pk, "name_pattern": "{application}.example.com",
    })

    assert not form.is_valid()
    assert "must end with '.{zone}'" in form.errors["name_pattern"][0]


def test_publish_again_from_the_record_list(admin_client, prod, api_app):
    EnvironmentZoneFactory(environment=prod, zone=ZoneFactory(name="apps.local."))

    record = services.dns_publish(application_id=api_app.id, environment_id=prod.id)
    Record.objects.filter(pk=record.pk).update(content="10.1.1.1")

    response = admin_client.post(
        "/admin/dns/record/", {"action": "publish_again", "_selected_action": [record.pk]}, follow=True
    )

    assert response.status_code == 200
    assert "Published 1 application name(s) again." in response.content.decode()
    assert Record.objects.get(pk=record.pk).content == "10.0.0.10"


def test_download_the_zone_file(admin_client, prod, api_app):
    zone = ZoneFactory(name="apps.local.")
    EnvironmentZoneFactory(environment=prod, zone=zone)

    services.dns_publish(application_id=api_app.id, environment_id=prod.id)

    response = admin_client.post("/admin/dns/zone/", {"action": "download_zone_file", "_selected_action": [zone.pk]})

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="apps.local.zone"'
    assert "api.shop.apps.local. 60 IN A 10.0.0.10" in response.content.decode()
