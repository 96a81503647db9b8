"""A worker process killed with SIGKILL in the middle of a deploy step: the release still finishes, once."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from deployments.models import Environment, Revision
from paas_site.celery import app as celery_app
from tests.deployments.factories import ApplicationFactory, MembershipFactory
from tests.workflows.factories import file_release
from workflows.choices import FINAL
from workflows.models import AuditEvent, Release, StepRun
from workflows.services import pipeline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
QUEUE = "crash-test"
LEASE_SECONDS = 2


def start_worker() -> subprocess.Popen:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "SLIPWAY_STEP_LEASE_SECONDS": str(LEASE_SECONDS),
        "SLIPWAY_VERIFY_POLL_SECONDS": "0.05",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "paas_site", "worker", "--pool=solo", "-Q", QUEUE,
         "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_until(predicate, timeout: float, every: float = 0.1, on_tick=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if on_tick:
            on_tick()
        time.sleep(every)
    return False


@pytest.fixture
def crash_queue():
    """Route this test's tasks to a queue only the subprocess worker consumes."""
    default = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = QUEUE
    yield
    celery_app.conf.task_default_queue = default


def test_sigkill_during_deploy_then_restart_finishes_exactly_once(project, sandbox_cluster, sandbox, crash_queue, settings):
    settings.SLIPWAY_STEP_LEASE_SECONDS = LEASE_SECONDS
    developer = MembershipFactory(project=project, role="developer").user
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=0, rollout_deadline_seconds=5)
    app = ApplicationFactory(project=project, name="api")
    worker = start_worker()
    try:
        # given a deploy step that is in the middle of talking to the cluster
        sandbox.inject_fault("hang", count=1, hang_seconds=4)
        release = file_release(actor=developer, application=app, environment=dev)
        assert wait_until(lambda: StepRun.objects.filter(release=release, step="deploy", status="running").exists(), 30)
        # when the worker is killed outright
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        # and a new one starts, with the reaper re-driving the step once its lease expired
        worker = start_worker()
        finished = wait_until(
            lambda: Release.objects.get(id=release.id).state in FINAL, 60, every=0.5,
            on_tick=pipeline.steps_reap,
        )
        release.refresh_from_db()
        assert finished, f"release still {release.state}"
    finally:
        worker.kill()
        worker.wait(10)

    # then it succeeded, and every side effect happened once
    assert release.state == "succeeded", release.failure_reason
    deploys = list(release.steps.filter(step="deploy").order_by("attempt").values_list("status", "error"))
    assert deploys[0][0] == "failed" and "worker lost" in deploys[0][1], deploys
    # the new worker may meet a transient error first (retried); it succeeds exactly once
    assert [status for status, _ in deploys[1:]].count("succeeded") == 1 and deploys[-1][0] == "succeeded", deploys
    assert Revision.objects.filter(application=app, environment=dev).count() == 1
    transitions = list(AuditEvent.objects.filter(release_id=release.id, action="release.transitioned")
                       .values_list("to_state", flat=True))
    assert transitions == ["approved", "building", "deploying", "verifying", "succeeded"]
