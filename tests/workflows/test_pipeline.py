"""End to end: a real Celery worker and Redis, PostgreSQL, and the sandbox cluster over HTTP.

The tests marked ``on_both_brokers`` run a second time on RabbitMQ (this run's vhost, quorum queues), with a
worker process configured for it as production would be; retries then go through RabbitMQ's native
delayed delivery (countdowns of a second or two).
"""
import time

import pytest

from deployments import services as deployments
from deployments.kube import ObjectNotFound
from deployments.models import Environment, Revision
from tests.broker_fixture import BROKERS, purge
from tests.deployments.factories import ApplicationFactory, MembershipFactory, UserFactory
from tests.reliability.conftest import WorkerProcess, tasks_sent_to
from tests.workflows.factories import PINNED, file_release, wait_final
from workflows import services
from workflows.audit import chain_verify
from workflows.models import AuditEvent, Release

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.usefixtures("quick_pipeline")]
BROKEN = "registry.example.com/shop/api:{version}-broken@sha256:" + "d" * 64
RABBITMQ_QUEUE = "pipeline-rabbitmq"
on_both_brokers = pytest.mark.parametrize("broker", BROKERS, indirect=True)


@pytest.fixture
def broker(request, tmp_path):
    """The session's worker on Redis; or, with the param ``rabbitmq``, a worker process on RabbitMQ."""
    if getattr(request, "param", "redis") == "redis":
        yield request.getfixturevalue("worker")
        return
    url = request.getfixturevalue("rabbitmq_url")
    purge(url, RABBITMQ_QUEUE)
    # retries of a second or more: RabbitMQ's delayed delivery carries them (shorter ones skip it)
    worker = WorkerProcess(tmp_path / "worker.log", queue=RABBITMQ_QUEUE, broker_url=url,
                           SLIPWAY_RETRY_BASE_SECONDS="2", SLIPWAY_RETRY_MAX_SECONDS="2")
    with tasks_sent_to(queue=RABBITMQ_QUEUE, broker_url=url):
        yield worker.start()
    worker.kill()


@pytest.fixture
def world(project, sandbox_cluster, broker):
    developer = MembershipFactory(project=project, role="developer", user=UserFactory(username="dev")).user
    approvers = [MembershipFactory(project=project, role="approver").user for _ in range(2)]
    prod = Environment.objects.create(name="prod", cluster=sandbox_cluster, required_approvals=2,
                                      rollout_deadline_seconds=5)
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=0,
                                     rollout_deadline_seconds=5)
    app = ApplicationFactory(project=project, name="api", replicas=2, exposed=True)
    return developer, approvers, dev, prod, app


def live_image(app, env) -> str:
    deployment = deployments.cluster_client(env.cluster).read("Deployment", app.name, f"shop-{env.name}")
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


@on_both_brokers
def test_file_approve_twice_and_the_worker_takes_it_to_succeeded(world):
    developer, approvers, _, prod, app = world
    # given a release to prod, which needs two approvals
    release = file_release(actor=developer, application=app, environment=prod)
    # when both approvers sign it off
    services.approval_grant(release_id=release.id, actor=approvers[0], comment="looks good")
    services.approval_grant(release_id=release.id, actor=approvers[1])
    # then the worker builds, deploys and verifies it
    release = wait_final(release)
    assert release.state == "succeeded", release.failure_reason
    assert release.image_digest == "sha256:" + "c" * 64
    assert live_image(app, prod) == PINNED.format(version="1.0")
    assert [(s.step, s.status) for s in release.steps.order_by("id")] == [
        ("build", "succeeded"), ("deploy", "succeeded"), ("verify", "succeeded")]
    assert release.revision.release == str(release.id)
    states = [(e.from_state, e.to_state) for e in AuditEvent.objects.filter(release_id=release.id,
                                                                               action="release.transitioned")]
    assert states == [("requested", "approved"), ("approved", "building"), ("building", "deploying"),
                      ("deploying", "verifying"), ("verifying", "succeeded")]
    assert chain_verify()[2] == ""


@on_both_brokers
def test_a_broken_image_is_rolled_back_to_the_previous_revision(world):
    developer, _, dev, _, app = world
    good = wait_final(file_release(actor=developer, application=app, environment=dev, version="1.0"))
    assert good.state == "succeeded"

    bad = wait_final(file_release(actor=developer, application=app, environment=dev, version="1.1",
                                  image=BROKEN.format(version="1.1")))

    assert bad.state == "rolled_back"
    assert bad.failed_step == "verify" and "progress deadline" in bad.failure_reason
    assert live_image(app, dev) == PINNED.format(version="1.0")
    latest = Revision.objects.filter(application=app, environment=dev).order_by("-number").first()
    assert (latest.kind, latest.source_id) == ("rollback", good.revision_id)


def test_a_broken_first_deploy_removes_its_objects(world):
    developer, _, dev, _, app = world

    bad = wait_final(file_release(actor=developer, application=app, environment=dev, version="0.1",
                                  image=BROKEN.format(version="0.1")))

    assert bad.state == "rolled_back"
    with pytest.raises(ObjectNotFound):
        live_image(app, dev)


@on_both_brokers
def test_queued_releases_of_a_lane_run_one_after_the_other(world):
    developer, _, dev, _, app = world

    first = file_release(actor=developer, application=app, environment=dev, version="1.0")
    second = file_release(actor=developer, application=app, environment=dev, version="2.0")

    assert (wait_final(first).state, wait_final(second).state) == ("succeeded", "succeeded")
    assert second.started_at >= first.finished_at
    assert live_image(app, dev) == PINNED.format(version="2.0")


@on_both_brokers
def test_transient_cluster_errors_are_retried(world, sandbox):
    developer, _, dev, _, app = world
    sandbox.inject_fault("503", count=3)

    release = wait_final(file_release(actor=developer, application=app, environment=dev))

    assert release.state == "succeeded", release.failure_reason
    retried = release.steps.filter(status="retrying")
    assert retried.exists() and "cluster sandbox unavailable" in retried.first().error


def test_an_unreachable_cluster_fails_the_release_with_a_clear_reason(world, settings):
    developer, _, dev, _, app = world
    settings.SLIPWAY_STEP_MAX_RETRIES = 2
    cluster = dev.cluster
    cluster.api_server = "http://127.0.0.1:9"
    cluster.save()

    release = wait_final(file_release(actor=developer, application=app, environment=dev))

    assert release.state in ("failed", "rolled_back")
    assert "cluster sandbox unreachable" in release.failure_reason
    assert "gave up after 3 attempts" in release.failure_reason


def test_rollback_of_a_succeeded_release_redeploys_the_previous_revision(world, api):
    developer, _, dev, _, app = world
    first = wait_final(file_release(actor=developer, application=app, environment=dev, version="1.0"))
    second = wait_final(file_release(actor=developer, application=app, environment=dev, version="2.0"))
    assert (first.state, second.state) == ("succeeded", "succeeded")

    response = api.as_user(developer).post(f"/api/v1/releases/{second.id}/rollback/", {}, format="json")

    assert response.status_code == 201, response.json()
    rollback = wait_final(Release.objects.get(id=response.json()["id"]))
    assert rollback.state == "succeeded", rollback.failure_reason
    assert (rollback.rollback_of_id, rollback.rollback_to_id, rollback.version) == (second.id, first.revision_id, "1.0")
    assert live_image(app, dev) == PINNED.format(version="1.0")


def test_project_webhooks_receive_signed_notifications(world):
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from workflows.models import ProjectWebhook
    from workflows.services.notifications import SIGNATURE_HEADER, signature

    developer, _, dev, _, app = world
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            received.append((self.headers[SIGNATURE_HEADER], self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ProjectWebhook.objects.create(project=app.project, url=f"http://127.0.0.1:{server.server_port}/hook",
                                      secret="hook-secret", events=["succeeded"])
        release = wait_final(file_release(actor=developer, application=app, environment=dev))
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.shutdown()

    assert len(received) == 1
    signed, body = received[0]
    assert signed == signature("hook-secret", body)
    payload = json.loads(body)
    assert payload["event"] == "succeeded" and payload["release"]["id"] == release.id


def test_a_tag_is_pinned_to_its_digest_at_filing_and_deployed_by_it(world, registry, api):
    developer, _, dev, _, app = world
    image = f"{registry.host}/shop/api:3.0"
    # given an image tag that is not in the registry yet: filing refuses it, naming the field
    response = api.as_user(developer).post("/api/v1/releases/", {
        "application": app.id, "environment": "dev", "version": "3.0", "image": image}, format="json")
    assert response.status_code == 400, response.json()
    assert "not found" in response.json()["extra"]["fields"]["image"][0]
    assert not Release.objects.exists()
    # when CI pushes it and the developer files again
    digest = registry.push_image("shop/api", "3.0")
    release = wait_final(file_release(actor=developer, application=app, environment=dev, version="3.0", image=image))
    # then the release was pinned at filing, and the tag moving later changes nothing it runs
    assert release.state == "succeeded", release.failure_reason
    assert release.image_digest == digest
    assert live_image(app, dev) == f"{image}@{digest}"


@pytest.fixture
def published_dev(world, pdns):
    """The dev environment publishing names in the real PowerDNS zone (emptied)."""
    from dns.models import EnvironmentZone, Zone

    if pdns.process is None or pdns.process.poll() is not None:
        pdns.start()
    pdns.reset()
    pdns_zone = pdns
    _, _, dev, _, _ = world
    zone = Zone.objects.create(name=pdns_zone.zone, provider="powerdns", api_url=pdns_zone.api_url,
                               api_key=pdns_zone.api_key, default_ttl=60)
    EnvironmentZone.objects.create(environment=dev, zone=zone)
    return pdns_zone


def test_a_release_publishes_its_name_in_real_dns(world, published_dev):
    developer, _, dev, _, app = world

    release = wait_final(file_release(actor=developer, application=app, environment=dev))

    assert release.state == "succeeded", release.failure_reason
    name = f"api.shop.{published_dev.zone}"
    assert published_dev.resolve(name, "A") == [dev.cluster.ingress_address]
    assert any("heritage=slipway" in txt for txt in published_dev.resolve(f"_slipway-owner.{name}", "TXT"))
    ingress = deployments.cluster_client(dev.cluster).read("Ingress", "api", "shop-dev")
    assert ingress["spec"]["rules"][0]["host"] == name.rstrip(".")


def test_a_failed_first_deploy_withdraws_its_name_and_a_rollback_keeps_the_old_one(world, published_dev):
    developer, _, dev, _, app = world
    name = f"api.shop.{published_dev.zone}"

    good = wait_final(file_release(actor=developer, application=app, environment=dev, version="1.0"))
    bad = wait_final(file_release(actor=developer, application=app, environment=dev, version="1.1",
                                  image=BROKEN.format(version="1.1")))

    assert (good.state, bad.state) == ("succeeded", "rolled_back")
    assert published_dev.resolve(name, "A") == [dev.cluster.ingress_address]


def test_a_name_owned_by_something_else_fails_the_release_before_the_cluster_is_touched(world, published_dev):
    developer, _, dev, _, app = world
    name = f"api.shop.{published_dev.zone}"
    published_dev.put(name, "A", "192.0.2.99")  # somebody else's record

    release = wait_final(file_release(actor=developer, application=app, environment=dev))

    assert (release.state, release.failed_step) == ("failed", "build")
    assert "owned by something else" in release.failure_reason
    assert published_dev.resolve(name, "A") == ["192.0.2.99"]
    with pytest.raises(ObjectNotFound):
        live_image(app, dev)


def test_decommission_removes_the_objects_and_the_name(world, published_dev, api, project):
    developer, _, dev, _, app = world
    maintainer = MembershipFactory(project=project, role="maintainer").user
    assert wait_final(file_release(actor=developer, application=app, environment=dev)).state == "succeeded"
    name = f"api.shop.{published_dev.zone}"
    assert published_dev.resolve(name, "A")

    refused = api.as_user(developer).post(f"/api/v1/applications/{app.id}/decommission/", {"environment": "dev"})
    response = api.as_user(maintainer).post(f"/api/v1/applications/{app.id}/decommission/", {"environment": "dev"})

    assert refused.status_code == 403
    assert response.status_code == 204
    with pytest.raises(ObjectNotFound):
        live_image(app, dev)
    assert published_dev.resolve(name, "A") == []
    event = AuditEvent.objects.get(action="application.decommissioned")
    assert event.actor == f"user:{maintainer.username}" and event.before["revision"] == 1
