"""A deploy whose worker hangs is reaped and rolled back by another worker; then the first one wakes up.

The sandbox holds the deploy's first write (the ``slow`` fault: a wedged API server that recovers), the
reaper (played by the test, as the beat would) fails the release, and the worker process's second thread
rolls it back to the running revision. When the held request is finally served, the woken worker's claim
(its StepRun attempt) is stale: it must write nothing more to the cluster and record no revision.
"""
import re

import pytest

from deployments import services as deployments
from deployments.models import Environment, Revision
from tests.deployments.factories import ApplicationFactory, MembershipFactory
from tests.workflows.factories import PINNED, file_release
from workflows.audit import chain_verify
from workflows.choices import FINAL
from workflows.models import Release, StepRun
from workflows.services import pipeline

from .conftest import tasks_sent_to, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
QUEUE = "reliability-stale"
HOLD = 12  # seconds the API server holds the deploy's first write: past the reaper and the whole rollback


def cluster_view(app, env, revision: Revision) -> dict:
    """What the cluster holds of a revision's objects: their spec, data, labels and generation."""
    client = deployments.cluster_client(env.cluster)
    view = {}
    for obj in revision.manifests:
        if obj["kind"] == "Namespace":
            continue  # shared, and the write already on the wire when the claim went stale (fencing.py)
        live = client.read(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
        view[(obj["kind"], obj["metadata"]["name"])] = (
            live.get("spec"), live.get("data"), live["metadata"].get("labels"), live["metadata"].get("generation"),
        )
    return view


def test_a_reaped_deploy_whose_worker_wakes_after_the_rollback_applies_nothing(
        project, sandbox_cluster, sandbox, start_worker, settings):
    settings.SLIPWAY_RELEASE_MAX_SECONDS = 3  # the reaper's limit, in this process (the beat)
    developer = MembershipFactory(project=project, role="developer").user
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=0,
                                     rollout_deadline_seconds=5)
    app = ApplicationFactory(project=project, name="api", replicas=1)
    with tasks_sent_to(queue=QUEUE):
        # a worker with two threads; leases long enough that the reaper fails the release rather than re-drive
        worker = start_worker(queue=QUEUE, broker_url=settings.CELERY_BROKER_URL, concurrency=2,
                              SLIPWAY_STEP_LEASE_SECONDS="60")
        first = file_release(actor=developer, application=app, environment=dev, version="1.0")
        assert wait_until(lambda: Release.objects.get(id=first.id).state in FINAL, 60), worker.log()
        first.refresh_from_db()
        assert first.state == "succeeded", first.failure_reason

        # given the next release's deploy hanging in its first write
        sandbox.inject_fault("slow", count=1, hang_seconds=HOLD, method="PATCH")
        second = file_release(actor=developer, application=app, environment=dev, version="2.0")
        held = wait_until(lambda: StepRun.objects.filter(release=second, step="deploy", status="running").exists()
                          and sandbox.faults.describe() is None, 30)
        assert held, worker.log()

        # when the reaper fails it and the worker's other thread rolls back to 1.0
        assert wait_until(lambda: Release.objects.get(id=second.id).state in FINAL, HOLD - 2, every=0.2,
                          on_tick=pipeline.steps_reap), worker.log()
        second.refresh_from_db()
        assert (second.state, second.failed_step) == ("rolled_back", "deploy"), second.failure_reason
        restored = Revision.objects.filter(application=app, environment=dev).order_by("-number").first()
        assert (restored.kind, restored.source_id) == ("rollback", first.revision_id)
        after_rollback = cluster_view(app, dev, restored)

        # then the woken worker stops at its next write
        stale = StepRun.objects.get(release=second, step="deploy", attempt=1)
        stopped = wait_until(lambda: "stopped before" in StepRun.objects.get(id=stale.id).log
                             or Revision.objects.filter(number__gt=restored.number).exists(), HOLD + 20)
        assert stopped, worker.log()
    # nothing was applied after the rollback, and the revisions end with it
    assert cluster_view(app, dev, restored) == after_rollback
    image = deployments.cluster_client(dev.cluster).read("Deployment", "api", "shop-dev")["spec"]["template"]
    assert image["spec"]["containers"][0]["image"] == PINNED.format(version="1.0")
    kinds = list(Revision.objects.filter(application=app, environment=dev).order_by("number")
                 .values_list("kind", "release"))
    assert kinds == [("apply", str(first.id)), ("rollback", str(second.id))]
    assert Release.objects.get(id=second.id).state == "rolled_back"
    stale.refresh_from_db()
    assert stale.status == "failed"
    # its heartbeat saw the claim go (or, had it not beaten since, the fence's own check): either stops it there
    assert re.search(r"(lost its lease|is no longer the step's claim).*: stopped before apply ResourceQuota", stale.log)
    assert chain_verify()[2] == ""
