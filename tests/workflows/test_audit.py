import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from paas_site.actors import SystemActor
from tests.deployments.factories import ApplicationFactory, ClusterFactory, EnvironmentFactory, UserFactory
from workflows import audit
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db


def record_scales(n: int) -> list[AuditEvent]:
    app, env, user = ApplicationFactory(), EnvironmentFactory(), UserFactory()
    with transaction.atomic():
        return [
            audit.application_scaled(actor=user, application=app, environment=env, before=i, after=i + 1) for i in range(n)
        ]


def test_events_form_a_hash_chain():
    events = record_scales(3)
    assert events[0].prev_hash == audit.GENESIS_HASH
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert audit.chain_verify() == (3, None, "")


def test_events_record_actor_target_and_message():
    event = record_scales(1)[0]
    assert event.actor.startswith("user:user")
    assert event.target_type == "deployments.application"
    assert event.before["replicas"] == 0 and event.after["replicas"] == 1
    assert "scaled from 0 to 1" in event.message


def test_events_refuse_update_and_delete():
    event = record_scales(1)[0]
    event.message = "nothing happened"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().update(message="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_events_are_only_written_inside_a_transaction():
    app, env = ApplicationFactory(), EnvironmentFactory()
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit.application_scaled(actor=SystemActor("test"), application=app, environment=env, before=1, after=2)
    assert not AuditEvent.objects.exists()


def test_audit_verify_passes_on_an_intact_chain(capsys):
    record_scales(4)
    call_command("audit_verify")
    assert "4 events verified" in capsys.readouterr().out


def test_audit_verify_names_an_altered_event():
    events = record_scales(4)
    with connection.cursor() as cursor:  # tamper behind the model's back
        cursor.execute("UPDATE workflows_auditevent SET message = %s WHERE id = %s", ["forged", events[2].id])
    with pytest.raises(CommandError, match=rf"event #{events[2].id} .*rewritten.* 3 events verified \(of 4"):
        call_command("audit_verify")


def test_audit_verify_names_a_removed_event():
    events = record_scales(4)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM workflows_auditevent WHERE id = %s", [events[1].id])
    with pytest.raises(CommandError, match=rf"event #{events[2].id} .*was removed or the events were reordered"):
        call_command("audit_verify")


def test_audit_verify_notices_the_newest_event_removed():
    events = record_scales(3)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM workflows_auditevent WHERE id = %s", [events[-1].id])
    with pytest.raises(CommandError, match="the chain head names a link no event has: the newest events were removed"):
        call_command("audit_verify")


def test_snapshots_never_contain_secrets():
    cluster = ClusterFactory(token="do-not-log-me")
    picture = audit.snapshot(cluster)
    assert picture["token"].startswith("(set ")
    assert "do-not-log-me" not in str(picture)


def test_configuration_changes_through_the_api_are_audited(api, staff):
    from deployments.models import Cluster

    client = api.as_user(staff)
    cluster = {"name": "east", "api_server": "https://east.example.com:6443", "token": "t-secret"}
    client.post("/api/v1/clusters/", cluster, format="json")
    client.patch("/api/v1/clusters/east/", {"ingress_address": "10.9.9.9", "token": "rotated"}, format="json")
    client.delete("/api/v1/clusters/east/")

    events = list(AuditEvent.objects.filter(target_type="deployments.cluster").order_by("id"))
    assert [e.action for e in events] == ["object.created", "object.changed", "object.deleted"]
    assert events[1].before["ingress_address"] == "" and events[1].after["ingress_address"] == "10.9.9.9"
    assert events[1].after["token"].startswith("(set "), "a rotated secret shows as changed, never its value"
    assert events[1].before["token"] != events[1].after["token"]
    assert "t-secret" not in str([e.before for e in events] + [e.after for e in events])
    assert events[0].actor == "user:ops"
    assert not Cluster.objects.exists()


def test_application_edits_in_the_admin_are_audited(client, staff):
    app = ApplicationFactory(replicas=1)
    client.force_login(staff)
    data = {
        "project": app.project_id, "name": app.name, "image": app.image, "port": 8080, "health_path": "/healthz",
        "cpu_request": "100m", "cpu_limit": "500m", "memory_request": "128Mi", "memory_limit": "256Mi",
        "replicas": 3, "description": "", "smoke_check_url": "",
    }
    response = client.post(f"/admin/deployments/application/{app.id}/change/", data)

    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get(action="object.changed")
    assert (event.before, event.after) == ({"replicas": 1}, {"replicas": 3})
