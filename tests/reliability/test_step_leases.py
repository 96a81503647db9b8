"""Heartbeat leases with real worker processes: a live slow step is never stolen; SIGTERM finishes or hands over.

Leases here are 2 s, renewed every 0.5 s (``conftest.LEASE_SECONDS``); the test plays the beat, running the
reaper every few tenths of a second, and a second worker waits on the same queue for anything re-driven.
"""
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.models import Environment
from deployments.sandbox import SandboxCluster
from tests.conftest import SANDBOX_TOKEN
from tests.deployments.factories import ApplicationFactory, ClusterFactory, MembershipFactory
from tests.workflows.factories import file_release
from workflows.choices import FINAL
from workflows.models import Release, StepRun
from workflows.services import pipeline

from .conftest import LEASE_SECONDS, tasks_sent_to, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
QUEUE = "reliability-leases"
ROLLOUT = 2 * LEASE_SECONDS + 1  # the verify step follows a rollout this long: more than twice the lease


@pytest.fixture
def slow_rollout(project):
    """An environment whose cluster takes ``ROLLOUT`` seconds to roll a Deployment out, and an application."""
    with SandboxCluster(port=0, rollout_delay=ROLLOUT, token=SANDBOX_TOKEN) as sandbox:
        cluster = ClusterFactory(name="slow", api_server=sandbox.url, token=SANDBOX_TOKEN)
        environment = Environment.objects.create(name="dev", cluster=cluster, required_approvals=0,
                                                 rollout_deadline_seconds=60)
        yield environment, ApplicationFactory(project=project, name="api", replicas=1)


def verify_runs(release: Release) -> list[tuple[str, str]]:
    return list(release.steps.filter(step="verify").order_by("attempt").values_list("status", "error"))


def test_a_live_step_longer_than_its_lease_is_never_stolen(project, slow_rollout, start_worker, settings):
    settings.SLIPWAY_STEP_LEASE_SECONDS = LEASE_SECONDS
    environment, app = slow_rollout
    developer = MembershipFactory(project=project, role="developer").user
    with tasks_sent_to(queue=QUEUE):
        workers = [start_worker(queue=QUEUE, broker_url=settings.CELERY_BROKER_URL) for _ in range(2)]
        # given a verify step that follows a rollout lasting several leases
        release = file_release(actor=developer, application=app, environment=environment)
        assert wait_until(lambda: StepRun.objects.filter(release=release, step="verify").exists(), 30), \
            workers[0].log()
        run = StepRun.objects.get(release=release, step="verify")
        first_lease = run.lease_expires_at
        # when the beat runs the reaper all along, with an idle worker ready to take anything re-driven
        finished = wait_until(lambda: Release.objects.get(id=release.id).state in FINAL, ROLLOUT + 30, every=0.3,
                              on_tick=pipeline.steps_reap)
    release.refresh_from_db()
    assert finished, [w.log() for w in workers]
    # then the worker that started the step finished it: one attempt, its lease renewed past the first one
    assert release.state == "succeeded", release.failure_reason
    assert verify_runs(release) == [("succeeded", "")]
    run.refresh_from_db()
    assert run.lease_expires_at > first_lease + timedelta(seconds=LEASE_SECONDS)
    assert run.finished_at - run.started_at > timedelta(seconds=LEASE_SECONDS)


@pytest.mark.parametrize("grace, pool", [(60, "solo"), (0.5, "solo"), (0.5, "prefork")],
                         ids=["finishes-within-the-grace", "handed-over-after-the-grace", "handed-over-by-a-prefork-child"])
def test_sigterm_mid_step_finishes_it_or_hands_it_to_another_worker(grace, pool, project, slow_rollout, start_worker,
                                                                     settings):
    settings.SLIPWAY_STEP_LEASE_SECONDS = LEASE_SECONDS
    environment, app = slow_rollout
    developer = MembershipFactory(project=project, role="developer").user
    with tasks_sent_to(queue=QUEUE):
        workers = [start_worker(queue=QUEUE, broker_url=settings.CELERY_BROKER_URL, pool=pool,
                                SLIPWAY_WORKER_STOP_GRACE_SECONDS=str(grace)) for _ in range(2)]
        assert wait_until(lambda: all("ready." in w.log() for w in workers), 60), [w.log() for w in workers]
        # given a worker inside a verify step that lasts longer than the grace (or not), and another one idle
        release = file_release(actor=developer, application=app, environment=environment)
        assert wait_until(lambda: StepRun.objects.filter(release=release, step="verify", status="running").exists(),
                          30), [w.log() for w in workers]
        task_id = StepRun.objects.get(release=release, step="verify").task_id
        stopping, other = sorted(workers, key=lambda w: task_id not in w.log())
        # when it is told to stop, as Kubernetes stops a pod
        stopping.terminate()
        stopped_at = timezone.now()
        finished = wait_until(lambda: Release.objects.get(id=release.id).state in FINAL, ROLLOUT + 30, every=0.2)
        assert finished, (stopping.log(), other.log())
        exited = wait_until(lambda: stopping.process.poll() is not None, 30)
    release.refresh_from_db()
    assert release.state == "succeeded", release.failure_reason
    # then it exits cleanly, having finished its step or handed it over; the step succeeds once either way
    assert exited and stopping.process.returncode == 0, stopping.log()
    runs = verify_runs(release)
    if grace > ROLLOUT:
        assert runs == [("succeeded", "")]
        assert release.steps.get(step="verify").finished_at < stopped_at + timedelta(seconds=grace)
        return
    assert runs[0][0] == "failed" and "handed over by its worker, which is stopping (SIGTERM)" in runs[0][1], runs
    assert runs[1:] == [("succeeded", "")], runs
    first, second = release.steps.filter(step="verify").order_by("attempt")
    # it stopped following the rollout at the next status the watch brought (or its next poll)
    assert re.search(r"handed to another worker .*: stopped before (following the rollout|polling again)", first.log)
    print(f"\nSIGTERM with a {grace}s grace ({pool} pool): another worker took the step over "
          f"{(second.started_at - stopped_at).total_seconds():.1f}s later")
