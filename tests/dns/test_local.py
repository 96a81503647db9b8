"""The local provider, the embedded default: Slipway's records are the zone, exported as a BIND zone file."""
import shutil
import subprocess
import threading

import pytest
from django.db import connection, transaction

from dns import selectors, services
from dns.models import Record
from dns.providers import RRset, ZoneAccess
from dns.providers.local import export_zone_file
from dns.tasks import dns_reconcile_task
from paas_site.errors import Conflict
from tests.dns.factories import RecordFactory, ZoneFactory

NAME = "api.shop.apps.local."


@pytest.fixture
def local_zone(published_in):
    zone = ZoneFactory(name="apps.local.", provider="local", default_ttl=120)
    published_in(zone)
    return zone


@pytest.mark.django_db
def test_publish_and_unpublish_in_a_local_zone_write_the_records_and_the_zone_file(local_zone, prod, api_app):
    record = services.dns_publish(application_id=api_app.id, environment_id=prod.id)

    assert (record.name, record.type, record.content, record.ttl, record.status) == (NAME, "A", "10.0.0.10", 120, "synced")
    zone_file = selectors.zone_file(zone=local_zone)
    assert f"{NAME} 120 IN A 10.0.0.10\n" in zone_file
    assert f'_slipway-owner.{NAME} 120 IN TXT "heritage=slipway,application=shop/api,environment=prod"\n' in zone_file
    assert services.dns_name_check(application_id=api_app.id, environment_id=prod.id) == "api.shop.apps.local"

    services.dns_unpublish(application_id=api_app.id, environment_id=prod.id)

    assert not Record.objects.exists()
    assert NAME not in selectors.zone_file(zone=local_zone)


@pytest.mark.django_db
def test_a_local_zone_is_always_in_sync(local_zone, prod, api_app):
    services.dns_publish(application_id=api_app.id, environment_id=prod.id)

    assert services.dns_reconcile() == {"checked": 2, "in_sync": 2, "repaired": 0, "errors": 0, "skipped": 0}


@pytest.mark.django_db
def test_a_record_of_no_known_application_is_not_taken_over(local_zone, prod, api_app):
    RecordFactory(zone=local_zone, name=NAME, content="192.0.2.1", application=None, environment=None)

    with pytest.raises(Conflict, match="already taken by a record that belongs to no application Slipway knows"):
        services.dns_publish(application_id=api_app.id, environment_id=prod.id)
    assert Record.objects.get().content == "192.0.2.1"


def test_the_zone_file_has_soa_and_ns_then_every_record_sorted_with_absolute_names():
    zone = ZoneAccess(name="apps.local.", default_ttl=300)
    rrsets = [
        RRset("web.shop.apps.local.", "CNAME", 60, ("lb.example.com.",)),
        RRset("_slipway-owner.api.shop.apps.local.", "TXT", 60, ('"heritage=slipway"',)),
        RRset("api.shop.apps.local.", "A", 60, ("10.0.0.2", "10.0.0.1")),
    ]

    assert export_zone_file(zone, rrsets, serial=42) == (
        "; zone apps.local. exported by Slipway\n"
        "$ORIGIN apps.local.\n"
        "$TTL 300\n"
        "@ IN SOA localhost. hostmaster.apps.local. 42 3600 600 604800 300\n"
        "@ IN NS localhost.\n"
        "api.shop.apps.local. 60 IN A 10.0.0.1\n"
        "api.shop.apps.local. 60 IN A 10.0.0.2\n"
        '_slipway-owner.api.shop.apps.local. 60 IN TXT "heritage=slipway"\n'
        "web.shop.apps.local. 60 IN CNAME lb.example.com.\n"
    )


@pytest.mark.integration
@pytest.mark.django_db
def test_a_real_nameserver_parses_the_exported_zone_file(local_zone, prod, api_app, tmp_path):
    zone2sql = shutil.which("zone2sql")
    if zone2sql is None:
        pytest.fail("zone2sql (pdns-server) is not installed: run the tests through .ci/test, which installs it")
    services.dns_publish(application_id=api_app.id, environment_id=prod.id)
    path = tmp_path / "apps.local.zone"
    path.write_text(selectors.zone_file(zone=local_zone))

    parsed = subprocess.run(
        [zone2sql, f"--zone={path}", "--zone-name=apps.local.", "--gsqlite"], capture_output=True, text=True, check=True
    )

    assert "1 domains were fully parsed, containing 4 records" in parsed.stderr + parsed.stdout
    assert "'api.shop.apps.local', 'A', '10.0.0.10', 120" in parsed.stdout


@pytest.mark.django_db
def test_the_beat_task_runs_reconcile(local_zone, prod, api_app):
    services.dns_publish(application_id=api_app.id, environment_id=prod.id)

    assert dns_reconcile_task.name == "dns.reconcile"
    assert dns_reconcile_task.apply().get() == {"checked": 2, "in_sync": 2, "repaired": 0, "errors": 0, "skipped": 0}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_reconcile_skips_records_a_publish_is_working_on(local_zone, prod, api_app):
    services.dns_publish(application_id=api_app.id, environment_id=prod.id)
    locked, release = threading.Event(), threading.Event()

    def publish_in_progress():
        try:
            with transaction.atomic():
                list(Record.objects.select_for_update())
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    worker = threading.Thread(target=publish_in_progress)
    worker.start()
    try:
        assert locked.wait(10)
        counts = services.dns_reconcile()
    finally:
        release.set()
        worker.join()

    assert counts == {"checked": 0, "in_sync": 0, "repaired": 0, "errors": 0, "skipped": 2}
    assert services.dns_reconcile()["in_sync"] == 2
