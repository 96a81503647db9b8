"""The outbound policy in the running pipeline: a real Celery worker, Redis, PostgreSQL and the sandbox cluster."""
import json

import pytest

from deployments.models import Cluster, Environment
from tests.conftest import SANDBOX_TOKEN
from tests.deployments.factories import ApplicationFactory, MembershipFactory, UserFactory
from tests.workflows.factories import file_release, wait_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.usefixtures("quick_pipeline")]


@pytest.fixture
def developer(project):
    return MembershipFactory(project=project, role="developer", user=UserFactory(username="dev")).user


def test_a_smoke_check_aimed_at_loopback_fails_the_release_and_reaches_nothing(
    project, developer, sandbox_cluster, worker, settings, http_peer
):
    # given an application whose smoke check names a loopback service, and a policy that allows only the sandbox
    inward = http_peer(lambda request: (200, {}, b"admin console"))
    sandbox_port = int(sandbox_cluster.api_server.rsplit(":", 1)[1])
    assert inward.server.server_port != sandbox_port
    settings.SLIPWAY_OUTBOUND_ALLOW = []
    app = ApplicationFactory(project=project, name="api", replicas=1,
                             smoke_check_url=f"http://localhost:{inward.server.server_port}/health")
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=0,
                                     rollout_deadline_seconds=5)
    # when the worker runs the release
    release = wait_final(file_release(actor=developer, application=app, environment=dev))
    # then verification fails with the policy's words, and the service never saw a connection
    assert release.state in ("failed", "rolled_back")
    assert "refused by the outbound policy" in release.failure_reason
    assert inward.connections == 0


def test_a_stored_exec_kubeconfig_fails_the_release_and_runs_nothing(
    project, developer, sandbox, worker, tmp_path
):
    # given a cluster whose kubeconfig (stored before the rule, so never validated) would run a program
    sandbox.reset()
    marker = tmp_path / "ran"
    credential = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                             "status": {"token": SANDBOX_TOKEN}})
    kubeconfig = json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": sandbox.url}}],
        "users": [{"name": "u", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "/bin/sh",
            "args": ["-c", f"touch {marker}; printf '%s' '{credential}'"]}}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    })
    cluster = Cluster.objects.create(name="old", auth_method="kubeconfig", kubeconfig=kubeconfig,
                                     api_server=sandbox.url, ingress_address="127.0.0.10")
    dev = Environment.objects.create(name="dev", cluster=cluster, required_approvals=0, rollout_deadline_seconds=5)
    app = ApplicationFactory(project=project, name="api", replicas=1)
    # when the worker runs a release to it
    release = wait_final(file_release(actor=developer, application=app, environment=dev))
    # then it fails naming the refused field, and the program never ran
    assert release.state in ("failed", "rolled_back")
    assert "its kubeconfig is refused: users[0].user.exec is not allowed" in release.failure_reason
    assert not marker.exists()
