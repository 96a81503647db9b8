"""Scale and decommission are lane work: refused (409) while a release of the lane is in flight, and holding
the lane while they write, so a release approved meanwhile starts only after they end. A real worker, Redis,
PostgreSQL and the sandbox cluster over HTTP; the sandbox's ``slow`` fault holds one request, as a wedged API
server would, to keep the release (or the operation) in the middle of its work."""
import threading

import pytest
from django.db import connection

from deployments import services as deployments
from deployments.fencing import StaleClaim
from deployments.models import Environment, Revision
from paas_site.errors import Conflict
from tests.deployments.factories import ApplicationFactory, MembershipFactory, UserFactory
from tests.reliability.conftest import wait_until
from tests.workflows.factories import PINNED, file_release, wait_final
from workflows import services
from workflows.audit import chain_verify
from workflows.models import AuditEvent, LaneOperation, Release, StepRun
from workflows.services.operations import ClaimedOperation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.usefixtures("quick_pipeline")]
HOLD = 3  # seconds the sandbox holds the one request: long enough to act while it waits


@pytest.fixture
def lane(project, sandbox_cluster, worker):
    """``api`` running 1.0 in ``dev`` (no approvals needed), a developer and a maintainer."""
    developer = MembershipFactory(project=project, role="developer", user=UserFactory(username="dev")).user
    maintainer = MembershipFactory(project=project, role="maintainer", user=UserFactory(username="lead")).user
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=0,
                                     rollout_deadline_seconds=5)
    app = ApplicationFactory(project=project, name="api", replicas=1)
    assert wait_final(file_release(actor=developer, application=app, environment=dev)).state == "succeeded"
    return developer, maintainer, app, dev


def deployment(app, dev) -> dict:
    return deployments.cluster_client(dev.cluster).read("Deployment", app.name, f"shop-{dev.name}")


def test_scale_and_decommission_are_refused_while_a_release_is_in_flight(lane, sandbox, api):
    developer, maintainer, app, dev = lane
    # given a release of the lane in the middle of its deploy (its first write held by the API server)
    sandbox.inject_fault("slow", count=1, hang_seconds=HOLD, method="PATCH")
    release = file_release(actor=developer, application=app, environment=dev, version="1.1")
    assert wait_until(lambda: StepRun.objects.filter(release=release, step="deploy", status="running").exists()
                      and sandbox.faults.describe() is None, 30)

    # when a developer scales the application and a maintainer decommissions it
    scaled = api.as_user(developer).post(f"/api/v1/applications/{app.id}/scale/",
                                         {"environment": "dev", "replicas": 3}, format="json")
    removed = api.as_user(maintainer).post(f"/api/v1/applications/{app.id}/decommission/",
                                           {"environment": "dev"}, format="json")

    # then both are refused, naming the release, and the release finishes as filed
    for response, kind in ((scaled, "scale"), (removed, "decommission")):
        assert response.status_code == 409, response.json()
        body = response.json()
        assert body["code"] == "lane_busy"
        assert body["message"] == f"Release #{release.id} is deploying in dev; {kind} after it finishes."
        assert body["extra"] == {"release": release.id}
    release = wait_final(release)
    assert release.state == "succeeded", release.failure_reason
    assert deployment(app, dev)["spec"]["replicas"] == 1
    assert deployment(app, dev)["spec"]["template"]["spec"]["containers"][0]["image"] == PINNED.format(version="1.1")
    assert not AuditEvent.objects.filter(action__in=["application.scaled", "application.decommissioned"]).exists()
    assert not LaneOperation.objects.exists()


def test_a_release_approved_during_a_decommission_starts_after_it_ends(lane, sandbox):
    developer, maintainer, app, dev = lane
    # given a decommission in the middle of its work (its first DELETE held by the API server)
    sandbox.inject_fault("slow", count=1, hang_seconds=HOLD, method="DELETE")
    failures = []

    def decommission() -> None:
        try:
            services.application_decommission(application=app, environment=dev, actor=maintainer)
        except Exception as exc:  # noqa: BLE001 (reported below)
            failures.append(repr(exc))
        finally:
            connection.close()

    thread = threading.Thread(target=decommission)
    thread.start()
    assert wait_until(lambda: LaneOperation.objects.exists() and sandbox.faults.describe() is None, 30)

    # when a release is filed and approved (by policy) meanwhile
    release = file_release(actor=developer, application=app, environment=dev, version="1.1")

    # then it waits for the decommission, saying so, and starts once the decommission is done
    waiting = []
    while LaneOperation.objects.exists():
        current = Release.objects.get(id=release.id)
        waiting.append((current.state, services.lane_wait_reason(current) if current.state == "approved" else ""))
        thread.join(0.1)
    thread.join()
    assert not failures, failures
    # (the last look may come after the claim was dropped, before the loop saw it gone)
    assert set(waiting) - {("approved", "")} == {
        ("approved", "waiting for the decommission of the application (by lead) to finish")}
    release = wait_final(release)
    assert release.state == "succeeded", release.failure_reason
    decommissioned = AuditEvent.objects.get(action="application.decommissioned")
    started = AuditEvent.objects.get(release_id=release.id, action="release.transitioned", to_state="building")
    assert decommissioned.id < started.id
    kinds = list(Revision.objects.filter(application=app, environment=dev).order_by("number")
                 .values_list("kind", flat=True))
    assert kinds == ["apply", "decommission", "apply"]
    assert deployment(app, dev)["spec"]["template"]["spec"]["containers"][0]["image"] == PINNED.format(version="1.1")
    assert not LaneOperation.objects.exists()
    assert chain_verify()[2] == ""


def test_an_operation_refuses_a_lane_another_operation_holds_until_it_expires(lane, settings):
    developer, maintainer, app, dev = lane
    # given a scale that died holding the lane (its claim left behind)
    held = LaneOperation.objects.create(application=app, environment=dev, kind="scale", actor="dev",
                                        expires_at="2999-01-01T00:00:00Z")
    # when a maintainer decommissions meanwhile: refused
    with pytest.raises(Conflict) as refused:
        services.application_decommission(application=app, environment=dev, actor=maintainer)
    assert refused.value.code == "lane_busy"
    assert refused.value.message == ("A scale of api in dev (by dev) is in progress; decommission after it "
                                     "finishes.")
    # once its claim has expired the lane goes on, and the dead scale's fence stops it at its next write
    LaneOperation.objects.filter(id=held.id).update(expires_at="2000-01-01T00:00:00Z")
    with pytest.raises(StaleClaim, match="the scale of api in dev lost its claim on the lane"):
        ClaimedOperation(held).fence("scale Deployment api")
    before = services.application_scale(application=app, environment=dev, replicas=2, actor=developer)
    assert before == 1 and deployment(app, dev)["spec"]["replicas"] == 2
    assert not LaneOperation.objects.exists()
