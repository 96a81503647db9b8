"""Publishing application names in a real PowerDNS: a name counts as published when a real query answers it."""
import pytest

from dns import services
from dns.models import Record
from dns.ownership import NameOwnedElsewhere
from paas_site.errors import ApplicationError, Conflict, PermanentError, TransientError
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, ProjectFactory
from tests.dns.factories import EnvironmentZoneFactory
from workflows.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

NAME = "api.shop.internal.test."
MARKER = "_slipway-owner.api.shop.internal.test."
OWNER_TXT = '"heritage=slipway,application=shop/api,environment=prod"'


def publish(app, env):
    return services.dns_publish(application_id=app.id, environment_id=env.id)


def unpublish(app, env):
    return services.dns_unpublish(application_id=app.id, environment_id=env.id)


def check(app, env):
    return services.dns_name_check(application_id=app.id, environment_id=env.id)


def dns_events():
    return list(AuditEvent.objects.filter(target_type="dns.record").order_by("id"))


def test_publish_answers_a_dns_query_with_the_ingress_address_and_marks_the_name_as_ours(
    pdns_zone, zone, prod, published_in, api_app
):
    # given internal.test. attached to prod, whose cluster's ingress is 10.0.0.10
    published_in(zone)

    # when
    record = publish(api_app, prod)

    # then a real query answers, and the ownership record sits beside the name
    assert pdns_zone.resolve(NAME, "A") == ["10.0.0.10"]
    assert pdns_zone.resolve(MARKER, "TXT") == [OWNER_TXT]
    assert (record.name, record.type, record.content, record.status) == (NAME, "A", "10.0.0.10", "synced")
    assert sorted(Record.objects.values_list("name", "type", "status")) == [
        (MARKER, "TXT", "synced"), (NAME, "A", "synced"),
    ]
    events = dns_events()
    assert [(e.actor, e.action, e.target_repr) for e in events] == [
        ("system:dns", "object.created", f"{NAME} A 10.0.0.10"),
        ("system:dns", "object.created", f"{MARKER} TXT {OWNER_TXT}"),
    ]
    assert events[0].project_id == api_app.project_id


def test_publishing_twice_changes_nothing_the_second_time(pdns_zone, zone, prod, published_in, api_app):
    published_in(zone)
    first = publish(api_app, prod)
    stamps = sorted(Record.objects.values_list("id", "updated_at"))

    second = publish(api_app, prod)

    assert second.pk == first.pk
    assert sorted(Record.objects.values_list("id", "updated_at")) == stamps
    assert len(dns_events()) == 2
    assert pdns_zone.resolve(NAME, "A") == ["10.0.0.10"]


def test_the_hostname_and_the_check_name_the_published_name(zone, prod, published_in, api_app):
    published_in(zone)

    assert services.dns_hostname(api_app, prod) == "api.shop.internal.test"
    assert check(api_app, prod) == "api.shop.internal.test"
    assert not Record.objects.exists(), "checking writes nothing"


def test_without_a_zone_there_is_no_name_and_nothing_to_publish(prod, api_app):
    assert services.dns_hostname(api_app, prod) is None
    assert check(api_app, prod) is None
    assert publish(api_app, prod) is None
    unpublish(api_app, prod)
    assert not Record.objects.exists()


def test_a_hostname_ingress_is_published_as_a_cname_and_an_ip_change_replaces_it(
    pdns_zone, zone, prod, published_in, api_app
):
    published_in(zone)
    publish(api_app, prod)

    # when the cluster's ingress becomes a load balancer hostname
    prod.cluster.ingress_address = "lb-1.elb.example.com"
    prod.cluster.save()
    record = publish(api_app, prod)

    # then the A is gone and the CNAME answers, in the same row
    assert pdns_zone.resolve(NAME, "A") == []
    assert pdns_zone.resolve(NAME, "CNAME") == ["lb-1.elb.example.com."]
    assert (record.type, record.content) == ("CNAME", "lb-1.elb.example.com.")
    assert Record.objects.count() == 2
    change = dns_events()[-1]
    assert change.action == "object.changed"
    assert change.before == {"content": "10.0.0.10", "type": "A"}
    assert change.after == {"content": "lb-1.elb.example.com.", "type": "CNAME"}


def test_unpublish_removes_the_name_from_dns_and_is_idempotent(pdns_zone, zone, prod, published_in, api_app):
    published_in(zone)
    publish(api_app, prod)

    unpublish(api_app, prod)
    unpublish(api_app, prod)

    assert pdns_zone.query(NAME, "A").rcode == "NXDOMAIN"
    assert pdns_zone.query(MARKER, "TXT").rcode == "NXDOMAIN"
    assert not Record.objects.exists()
    assert [e.action for e in dns_events()][-2:] == ["object.deleted", "object.deleted"]


def test_a_name_something_else_holds_is_refused_and_left_alone(pdns_zone, zone, prod, published_in, api_app):
    published_in(zone)
    pdns_zone.put(NAME, "A", "192.0.2.99")

    # the check, before any deploy, says who holds it
    with pytest.raises(NameOwnedElsewhere) as error:
        check(api_app, prod)
    assert isinstance(error.value, PermanentError)
    assert str(error.value) == (
        "DNS name api.shop.internal.test is owned by something else: it holds A 192.0.2.99 "
        f"and has no ownership record {MARKER} TXT."
    )

    # publishing anyway changes nothing in DNS and records why
    with pytest.raises(NameOwnedElsewhere):
        publish(api_app, prod)
    assert pdns_zone.resolve(NAME, "A") == ["192.0.2.99"]
    assert pdns_zone.resolve(MARKER, "TXT") == []
    address = Record.objects.get(type="A")
    assert address.status == "error" and "owned by something else" in address.last_error

    # and withdrawing (a rollback) forgets our intent without touching their record
    unpublish(api_app, prod)
    assert pdns_zone.resolve(NAME, "A") == ["192.0.2.99"]
    assert not Record.objects.exists()


def test_a_name_published_for_another_environment_is_not_taken_over(pdns_zone, zone, prod, published_in, api_app):
    published_in(zone)
    pdns_zone.put(NAME, "A", "10.9.9.9")
    pdns_zone.put(MARKER, "TXT", '"heritage=slipway,application=shop/api,environment=staging"')

    with pytest.raises(NameOwnedElsewhere, match="published for shop/api in staging"):
        check(api_app, prod)


def test_two_applications_rendering_the_same_name_collide_with_a_clear_error(pdns_zone, zone, prod, published_in):
    # given a pattern without the project, and two projects with an "api"
    published_in(zone, "{application}.{zone}")
    shop_api = ApplicationFactory(project=ProjectFactory(slug="shop"), name="api")
    blog_api = ApplicationFactory(project=ProjectFactory(slug="blog"), name="api")
    publish(shop_api, prod)

    with pytest.raises(Conflict) as error:
        check(blog_api, prod)
    assert error.value.message.startswith("DNS name api.internal.test is already taken by shop/api in prod;")
    with pytest.raises(Conflict):
        publish(blog_api, prod)
    assert pdns_zone.resolve("api.internal.test.", "TXT") == []
    assert pdns_zone.resolve("_slipway-owner.api.internal.test.", "TXT") == [
        '"heritage=slipway,application=shop/api,environment=prod"'
    ]


def test_two_environments_sharing_a_zone_and_pattern_collide(zone, prod, published_in, api_app):
    published_in(zone)
    staging = EnvironmentFactory(name="staging", cluster=prod.cluster)
    EnvironmentZoneFactory(environment=staging, zone=zone)
    publish(api_app, prod)

    with pytest.raises(Conflict, match="already taken by shop/api in prod"):
        check(api_app, staging)


def test_a_new_pattern_moves_the_name(pdns_zone, zone, prod, published_in, api_app):
    attachment = published_in(zone)
    publish(api_app, prod)

    attachment.name_pattern = "{application}.{project}.{environment}.{zone}"
    attachment.save()
    record = publish(api_app, prod)

    assert record.name == "api.shop.prod.internal.test."
    assert pdns_zone.resolve("api.shop.prod.internal.test.", "A") == ["10.0.0.10"]
    assert pdns_zone.query(NAME, "A").rcode == "NXDOMAIN"
    assert pdns_zone.query(MARKER, "TXT").rcode == "NXDOMAIN"
    assert Record.objects.count() == 2


@pytest.mark.parametrize(
    ("pattern", "ingress", "code", "reason"),
    [
        ("{application}_{project}.{zone}", "10.0.0.10", "invalid_dns_name", "shop/api has no valid DNS name in prod"),
        ("{application}.{project}.{zone}", "", "invalid_dns_target", "cluster prod-cluster: there is no ingress address"),
    ],
)
def test_an_invalid_name_or_target_is_refused_before_anything_is_written(
    pdns_zone, zone, prod, published_in, api_app, pattern, ingress, code, reason
):
    published_in(zone, pattern)
    prod.cluster.ingress_address = ingress
    prod.cluster.save()

    for call in (check, publish):
        with pytest.raises(ApplicationError) as error:
            call(api_app, prod)
        assert error.value.code == code and reason in error.value.message
    assert not Record.objects.exists()
    assert pdns_zone.resolve(NAME, "A") == []


def test_a_provider_outage_is_recorded_and_raised_as_transient_then_publish_succeeds(
    pdns_zone, zone, prod, published_in, api_app
):
    published_in(zone)
    pdns_zone.stop()
    try:
        with pytest.raises(TransientError, match="DNS provider internal.test. unreachable"):
            publish(api_app, prod)
        failed = Record.objects.get(type="A")
        assert failed.status == "error" and "unreachable" in failed.last_error
    finally:
        pdns_zone.start()

    record = publish(api_app, prod)

    assert (record.pk, record.status, record.last_error) == (failed.pk, "synced", "")
    assert pdns_zone.resolve(NAME, "A") == ["10.0.0.10"]


# -- reconcile ------------------------------------------------------------------------------------


def test_reconcile_repairs_a_record_deleted_behind_slipways_back(pdns_zone, zone, prod, published_in, api_app):
    published_in(zone)
    publish(api_app, prod)
    pdns_zone.delete(NAME, "A")
    assert pdns_zone.resolve(NAME, "A") == []

    counts = services.dns_reconcile()

    assert counts == {"checked": 2, "in_sync": 1, "repaired": 1, "errors": 0, "skipped": 0}
    assert pdns_zone.resolve(NAME, "A") == ["10.0.0.10"]
    repair = dns_events()[-1]
    assert (repair.actor, repair.action, repair.target_repr) == ("system:dns", "object.changed", f"{NAME} A 10.0.0.10")
    assert repair.before["content"] is None and repair.after["content"] == "10.0.0.10"


def test_reconcile_restores_changed_content_and_leaves_a_synced_zone_alone(pdns_zone, zone, prod, published_in, api_app):
    published_in(zone)
    publish(api_app, prod)
    pdns_zone.put(NAME, "A", "203.0.113.5", ttl=5)

    assert services.dns_reconcile()["repaired"] == 1
    assert pdns_zone.resolve(NAME, "A") == ["10.0.0.10"]
    events = len(dns_events())

    assert services.dns_reconcile() == {"checked": 2, "in_sync": 2, "repaired": 0, "errors": 0, "skipped": 0}
    assert len(dns_events()) == events


def test_reconcile_marks_records_error_when_the_provider_refuses(zone, prod, published_in, api_app):
    published_in(zone)
    publish(api_app, prod)
    zone.api_key = "revoked"
    zone.save()

    counts = services.dns_reconcile()

    assert counts["errors"] == 2 and counts["repaired"] == 0
    for record in Record.objects.all():
        assert record.status == "error"
        assert "rejected the API key" in record.last_error and "revoked" not in record.last_error


def test_reconcile_never_takes_a_name_back_from_someone_else(pdns_zone, zone, prod, published_in, api_app):
    published_in(zone)
    publish(api_app, prod)
    # someone replaced our name and dropped our ownership record
    pdns_zone.delete(MARKER, "TXT")
    pdns_zone.put(NAME, "A", "192.0.2.44")

    counts = services.dns_reconcile()

    assert counts["errors"] == 2
    assert pdns_zone.resolve(NAME, "A") == ["192.0.2.44"]
    assert "owned by something else" in Record.objects.get(type="A").last_error


def test_reconcile_clears_the_error_once_the_provider_is_back(pdns_zone, zone, prod, published_in, api_app):
    published_in(zone)
    pdns_zone.stop()
    try:
        with pytest.raises(TransientError):
            publish(api_app, prod)
    finally:
        pdns_zone.start()

    counts = services.dns_reconcile()

    assert counts == {"checked": 2, "in_sync": 0, "repaired": 2, "errors": 0, "skipped": 0}
    assert set(Record.objects.values_list("status", flat=True)) == {"synced"}
    assert pdns_zone.resolve(NAME, "A") == ["10.0.0.10"]
