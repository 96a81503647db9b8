"""A cluster that answers 503, 429 or nothing at all: retried with backoff, then a clear failure; never stuck forever."""
import pytest

from deployments.models import Environment, Revision
from deployments.sandbox import SandboxCluster
from tests.conftest import SANDBOX_TOKEN, wait_until_idle
from tests.deployments.factories import ApplicationFactory, ClusterFactory, MembershipFactory
from tests.workflows.factories import file_release
from workflows.audit import chain_verify
from workflows.choices import FINAL
from workflows.models import Release, StepRun
from workflows.services import pipeline

from .conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.usefixtures("quick_pipeline")]


@pytest.fixture(autouse=True)
def few_retries(settings):
    settings.SLIPWAY_STEP_MAX_RETRIES = 2


@pytest.fixture
def lane(project):
    def make(cluster):
        developer = MembershipFactory(project=project, role="developer").user
        dev = Environment.objects.create(name="dev", cluster=cluster, required_approvals=0, rollout_deadline_seconds=5)
        return developer, ApplicationFactory(project=project, name="api", replicas=1), dev
    return make


@pytest.mark.parametrize("mode, reason", [
    ("503", "cluster sandbox unavailable (apply Namespace shop-dev): HTTP 503: The API server is temporarily unavailable"),
    ("429", "cluster sandbox unavailable (apply Namespace shop-dev): HTTP 429: Too many requests"),
    ("hang", "cluster sandbox unreachable: Read timed out. (read timeout=0.3)"),
], ids=["503", "429", "hang"])
def test_a_cluster_failing_past_the_retry_budget_fails_the_release_clearly(
        mode, reason, lane, sandbox_cluster, sandbox, worker, settings):
    settings.SLIPWAY_CLUSTER_TIMEOUT_SECONDS = 0.3
    developer, app, dev = lane(sandbox_cluster)
    sandbox.inject_fault(mode, count=1000, hang_seconds=1)

    release = file_release(actor=developer, application=app, environment=dev)
    assert wait_until(lambda: Release.objects.get(id=release.id).state in FINAL, 60, every=0.2)

    release.refresh_from_db()
    deploys = list(release.steps.filter(step="deploy").order_by("attempt").values_list("status", flat=True))
    assert deploys == ["retrying", "retrying", "failed"]  # three attempts with backoff, then given up
    assert (release.state, release.failed_step) == ("rolled_back", "deploy")  # nothing was applied: nothing to undo
    assert release.failure_reason.startswith(reason), release.failure_reason
    assert release.failure_reason.endswith("(gave up after 3 attempts)")
    assert not Revision.objects.exists()


def test_a_step_that_never_finishes_is_ended_by_the_reaper(lane, worker, settings):
    settings.SLIPWAY_RELEASE_MAX_SECONDS = 2
    settings.SLIPWAY_CLUSTER_TIMEOUT_SECONDS = 600
    with SandboxCluster(port=0, token=SANDBOX_TOKEN) as hung:
        developer, app, dev = lane(ClusterFactory(name="hung", api_server=hung.url, token=SANDBOX_TOKEN))
        hung.inject_fault("hang", count=1000, hang_seconds=600)
        # given a deploy whose cluster never answers, so the worker never comes back from it
        release = file_release(actor=developer, application=app, environment=dev)
        assert wait_until(lambda: StepRun.objects.filter(release=release, step="deploy").exists(), 30)
        # when the beat runs the reaper: the deploy is failed, then the rollback (on the same stuck worker) is too
        finished = wait_until(lambda: Release.objects.get(id=release.id).state in FINAL, 30, every=0.5,
                              on_tick=pipeline.steps_reap)
        release.refresh_from_db()
        assert finished, release.state
        assert (release.state, release.failed_step) == ("failed", "rollback")
        assert release.failure_reason == "stuck in rolling_back: in flight for over 4 seconds; failed by the reaper"
        deploy = release.steps.get(step="deploy")
        assert deploy.error == "stuck in deploying: in flight for over 2 seconds; failed by the reaper"
    # then the stuck worker, set free, does not reopen the step the reaper closed, nor retry it
    wait_until_idle(worker)
    deploy.refresh_from_db()
    assert deploy.status == "failed"
    assert not StepRun.objects.filter(status__in=["running", "retrying"]).exists()
    assert Release.objects.get(id=release.id).state == "failed"
    assert chain_verify()[2] == ""
