"""The worker's PostgreSQL connection is terminated in the middle of a step: the step runs again, nothing half-written.

``pg_terminate_backend`` is what a database failover, a restart or a network cut
does to a connection. The step notices on its next query, the task retries on
a fresh connection, and the release finishes as if nothing happened.
"""
import pytest
from django.db import connection

from deployments.models import Environment, Revision
from deployments.sandbox import SandboxCluster
from tests.conftest import SANDBOX_TOKEN
from tests.deployments.factories import ApplicationFactory, ClusterFactory, MembershipFactory
from tests.workflows.factories import file_release
from workflows.audit import chain_verify
from workflows.choices import FINAL
from workflows.models import AuditEvent, Release, StepRun

from .conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.usefixtures("quick_pipeline")]
FORWARD = ["approved", "building", "deploying", "verifying", "succeeded"]


def terminate_other_connections() -> int:
    """Kill every other session on the test database: the worker's (this test's own stays)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.parametrize("step", ["deploy", "verify"])
def test_a_connection_killed_mid_step_retries_the_step(step, project, worker):
    # deploy: the connection dies while the first apply hangs, so its next write (noting the retry) fails;
    # verify: it dies while the rollout is followed, so the write that records success fails
    with SandboxCluster(port=0, rollout_delay=3 if step == "verify" else 0.1, token=SANDBOX_TOKEN) as sandbox:
        developer = MembershipFactory(project=project, role="developer").user
        cluster = ClusterFactory(name="sandbox", api_server=sandbox.url, token=SANDBOX_TOKEN)
        dev = Environment.objects.create(name="dev", cluster=cluster, required_approvals=0, rollout_deadline_seconds=10)
        app = ApplicationFactory(project=project, name="api", replicas=1)
        if step == "deploy":
            sandbox.inject_fault("hang", hang_seconds=2, method="PATCH")
        # given a release whose worker is inside the step
        release = file_release(actor=developer, application=app, environment=dev)
        assert wait_until(lambda: StepRun.objects.filter(release=release, step=step, status="running").exists()
                          and sandbox.faults.describe() is None, 30)  # deploy: inside the hung request
        # when its database connection is terminated
        assert terminate_other_connections() >= 1
        finished = wait_until(lambda: Release.objects.get(id=release.id).state in FINAL, 60, every=0.2)

    release.refresh_from_db()
    assert finished, release.state
    # then the step ran again on a new connection and the release succeeded
    assert release.state == "succeeded", release.failure_reason
    runs = list(release.steps.filter(step=step).order_by("attempt").values_list("status", "error"))
    assert runs == [("failed", "interrupted (database connection lost); running the step again"),
                    ("succeeded", "")], runs
    # and nothing was half-written: one revision, each transition once, no step left open
    assert Revision.objects.filter(application=app, environment=dev).count() == 1
    transitions = list(AuditEvent.objects.filter(release_id=release.id, action="release.transitioned")
                       .values_list("to_state", flat=True))
    assert transitions == FORWARD
    assert not StepRun.objects.filter(status__in=["running", "retrying"]).exists()
    assert chain_verify()[2] == ""
