"""The pipeline's event figures, recorded where the events happen (``paas_site.metrics``).

The session's real worker runs in this process, so its counters and histograms are read here directly.
"""
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from deployments.models import Environment
from paas_site.metrics import CALL_ERRORS, LANE_WAIT, REAPER_ACTIONS, STEP_DURATION, STEP_RETRIES, WEBHOOK_DELIVERIES
from tests.deployments.factories import ApplicationFactory
from tests.workflows.factories import file_release, wait_final
from workflows.models import ProjectWebhook, Release
from workflows.services import pipeline
from workflows.tasks import webhook_deliver_task


def value(metric, *labels) -> float:
    """A counter's total, or a histogram's number of observations, for these label values (0 before any)."""
    family = metric.describe()[0]
    name = family.name + ("_count" if family.type == "histogram" else "_total")
    return REGISTRY.get_sample_value(name, dict(zip(metric._labelnames, labels, strict=True))) or 0.0


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
@pytest.mark.usefixtures("quick_pipeline")
def test_a_retried_step_is_counted_and_each_attempt_timed(project, developer, sandbox_cluster, sandbox, worker):
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=0, rollout_deadline_seconds=5)
    app = ApplicationFactory(project=project, name="api", replicas=1)
    before = {
        "retries": value(STEP_RETRIES, "deploy"), "errors": value(CALL_ERRORS, "cluster", "sandbox", "transient"),
        "retrying": value(STEP_DURATION, "deploy", "retrying"), "succeeded": value(STEP_DURATION, "verify", "succeeded"),
        "waits": value(LANE_WAIT, "dev"),
    }
    # given the cluster answers the deploy's first write with a 503
    sandbox.inject_fault("503", count=1, method="PATCH")
    release = wait_final(file_release(actor=developer, application=app, environment=dev))
    assert release.state == "succeeded", release.failure_reason
    # then the retry, the cluster's error and both deploy attempts are counted
    assert value(STEP_RETRIES, "deploy") == before["retries"] + 1
    assert value(CALL_ERRORS, "cluster", "sandbox", "transient") == before["errors"] + 1
    assert value(STEP_DURATION, "deploy", "retrying") == before["retrying"] + 1
    assert value(STEP_DURATION, "verify", "succeeded") == before["succeeded"] + 1
    assert value(LANE_WAIT, "dev") == before["waits"] + 1


@pytest.mark.django_db
def test_the_reaper_counts_what_it_redrives_and_what_it_fails(project, developer, sandbox_cluster, settings,
                                                               django_capture_on_commit_callbacks):
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=0)
    with django_capture_on_commit_callbacks(execute=False):  # no worker: the steps stay unclaimed
        lost, stuck = (file_release(actor=developer, application=ApplicationFactory(project=project, name=name),
                                    environment=dev) for name in ("lost", "stuck"))
        for release in (lost, stuck):
            pipeline.lane_advance(application_id=release.application_id, environment_id=dev.id)
        Release.objects.filter(id=stuck.id).update(
            started_at=timezone.now() - timedelta(seconds=settings.SLIPWAY_RELEASE_MAX_SECONDS + 60))
        redriven, failed = value(REAPER_ACTIONS, "redriven"), value(REAPER_ACTIONS, "failed_stuck")
        # when the reaper runs: one release's step was never claimed (lost message), the other is past its limit
        assert pipeline.steps_reap() == 1
    assert value(REAPER_ACTIONS, "redriven") == redriven + 1
    assert value(REAPER_ACTIONS, "failed_stuck") == failed + 1
    assert Release.objects.get(id=stuck.id).state == "failed"


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "counted"), [
    (204, {"delivered": 1}), (404, {"failed": 1}),
    # run eagerly, the retries follow at once: every one is counted, then the attempt that gives up
    (503, {"retrying": webhook_deliver_task.max_retries, "failed": 1}),
])
def test_webhook_deliveries_are_counted_by_outcome(project, http_peer, status, counted):
    peer = http_peer(lambda request: (status, {}, b""))
    hook = ProjectWebhook.objects.create(project=project, url=f"{peer.url}/hook", secret="s", events=["succeeded"])
    outcomes = ("delivered", "retrying", "failed")
    before = {outcome: value(WEBHOOK_DELIVERIES, outcome) for outcome in outcomes}
    webhook_deliver_task.apply(args=(hook.id, {"event": "succeeded"}))
    assert {o: value(WEBHOOK_DELIVERIES, o) - before[o] for o in outcomes} == {o: counted.get(o, 0) for o in outcomes}
