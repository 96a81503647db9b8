import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dns.models import Zone
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, ProjectFactory
from tests.dns.factories import EnvironmentZoneFactory, RecordFactory, ZoneFactory
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db

API_KEY = "pdns-api-key-that-must-never-leak"


@pytest.fixture
def pdns_zone_row(db):
    zone = ZoneFactory(name="internal.example.", provider="powerdns", api_url="http://127.0.0.1:8081", api_key=API_KEY)
    EnvironmentZoneFactory(environment=EnvironmentFactory(name="prod"), zone=zone)
    return zone


def test_every_signed_in_user_reads_zones_but_never_the_api_key(api, developer, pdns_zone_row):
    response = api.as_user(developer).get("/api/v1/dns/zones/")

    assert response.status_code == 200
    assert API_KEY not in response.content.decode()
    [zone] = response.json()["results"]
    assert "api_key" not in zone
    assert zone["name"] == "internal.example." and zone["has_api_key"] is True
    assert zone["environments"] == [{"environment": "prod", "name_pattern": "{application}.{project}.{zone}"}]
    detail = api.get("/api/v1/dns/zones/internal.example./")
    assert detail.status_code == 200 and API_KEY not in detail.content.decode()


def test_anonymous_requests_are_refused(api, pdns_zone_row):
    assert api.get("/api/v1/dns/zones/").status_code == 401
    assert api.get("/api/v1/dns/records/").status_code == 401


def test_a_platform_admin_creates_a_zone_whose_key_goes_in_and_never_comes_out(api, staff):
    body = {"name": "Internal.Example", "provider": "powerdns", "api_url": "http://pdns.example.com:8081",
            "api_key": API_KEY}

    response = api.as_user(staff).post("/api/v1/dns/zones/", body, format="json")

    assert response.status_code == 201, response.json()
    assert API_KEY not in response.content.decode()
    assert response.json()["name"] == "internal.example." and response.json()["has_api_key"] is True
    assert Zone.objects.get().api_key == API_KEY
    event = AuditEvent.objects.get(target_type="dns.zone")
    assert event.actor == "user:ops" and API_KEY not in str(event.after)


def test_leaving_the_key_out_or_empty_keeps_the_stored_one(api, staff, pdns_zone_row):
    client = api.as_user(staff)
    for change in ({"default_ttl": 120}, {"default_ttl": 90, "api_key": ""}):
        response = client.patch("/api/v1/dns/zones/internal.example./", change, format="json")
        assert response.status_code == 200, response.json()
    pdns_zone_row.refresh_from_db()
    assert (pdns_zone_row.default_ttl, pdns_zone_row.api_key) == (90, API_KEY)


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"name": "internal.example.", "provider": "local"}, "name", "already exists"),
        ({"name": "bad_zone.example", "provider": "local"}, "name", "letters, digits and '-'"),
        ({"name": "other.example", "provider": "powerdns", "api_url": "http://pdns.example.com"}, "api_key", "required"),
        ({"name": "other.example", "provider": "powerdns", "api_key": "k"}, "api_url", "required"),
    ],
)
def test_bad_zones_are_400_naming_the_field(api, staff, pdns_zone_row, body, field, reason):
    response = api.as_user(staff).post("/api/v1/dns/zones/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["extra"]["fields"] and reason in response.json()["message"]


def test_only_platform_admins_change_zones(api, developer, pdns_zone_row):
    client = api.as_user(developer)

    assert client.post("/api/v1/dns/zones/", {"name": "x.example", "provider": "local"}, format="json").status_code == 403
    assert client.patch("/api/v1/dns/zones/internal.example./", {"default_ttl": 5}, format="json").status_code == 403
    assert client.delete("/api/v1/dns/zones/internal.example./").status_code == 403


def test_a_zone_with_records_is_neither_renamed_nor_deleted(api, staff, pdns_zone_row):
    RecordFactory(zone=pdns_zone_row)
    client = api.as_user(staff)

    renamed = client.patch("/api/v1/dns/zones/internal.example./", {"name": "moved.example."}, format="json")
    deleted = client.delete("/api/v1/dns/zones/internal.example./")

    assert renamed.status_code == 400 and "cannot be renamed" in renamed.json()["message"]
    assert deleted.status_code == 409 and deleted.json()["code"] == "in_use"


# -- records ------------------------------------------------------------------------------------


@pytest.fixture
def records(project, pdns_zone_row):
    """shop/api in prod (visible to shop's members), blog/web in prod, and a record of no known application."""
    prod = pdns_zone_row.environments.get().environment
    shop_api = ApplicationFactory(project=project, name="api")
    blog_web = ApplicationFactory(project=ProjectFactory(slug="blog"), name="web")
    return {
        "shop": RecordFactory(zone=pdns_zone_row, application=shop_api, environment=prod),
        "blog": RecordFactory(zone=pdns_zone_row, application=blog_web, environment=prod),
        "foreign": RecordFactory(zone=pdns_zone_row, name="legacy.internal.example.", application=None, environment=None),
    }


def listed(client, query=""):
    response = client.get(f"/api/v1/dns/records/{query}")
    assert response.status_code == 200, response.json()
    return sorted(item["name"] for item in response.json()["results"])


def test_members_see_the_records_of_their_projects_applications_only(api, developer, outsider, records):
    assert listed(api.as_user(developer)) == ["api.shop.internal.example."]
    assert listed(api.as_user(outsider)) == []
    assert api.as_user(outsider).get(f"/api/v1/dns/records/{records['blog'].id}/").status_code == 404


@pytest.mark.parametrize("reader", ["staff", "finance_user"])
def test_platform_admins_and_finance_see_every_record(api, records, reader, request):
    assert listed(api.as_user(request.getfixturevalue(reader))) == [
        "api.shop.internal.example.", "legacy.internal.example.", "web.blog.internal.example.",
    ]


def test_records_filter_by_application_and_environment(api, staff, records):
    client = api.as_user(staff)
    shop_api = records["shop"].application

    assert listed(client, f"?application={shop_api.id}&environment=prod") == ["api.shop.internal.example."]
    assert listed(client, f"?application={shop_api.id}&environment=staging") == []
    assert listed(client, "?project=blog") == ["web.blog.internal.example."]


def test_a_record_shows_its_owner_and_sync_state(api, developer, records):
    [item] = api.as_user(developer).get("/api/v1/dns/records/").json()["results"]

    assert {key: item[key] for key in ("zone", "type", "content", "application_name", "project", "environment",
                                         "status", "last_error")} == {
        "zone": "internal.example.", "type": "A", "content": "10.0.0.10", "application_name": "api",
        "project": "shop", "environment": "prod", "status": "synced", "last_error": "",
    }


def test_listing_records_takes_a_fixed_number_of_queries(api, staff, records, pdns_zone_row):
    client = api.as_user(staff)
    with CaptureQueriesContext(connection) as few:
        client.get("/api/v1/dns/records/")
    for index in range(5):
        RecordFactory(zone=pdns_zone_row, name=f"more{index}.internal.example.")

    with CaptureQueriesContext(connection) as many:
        client.get("/api/v1/dns/records/")

    assert len(many) == len(few)
