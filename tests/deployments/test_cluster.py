"""The cluster half of a release, against the sandbox cluster over HTTP with the official client."""
import pytest

from deployments import services
from deployments.kube import ClusterAccess, KubeClient
from deployments.manifests import ReleaseConfig
from deployments.models import Revision
from paas_site.errors import ApplicationError, PermanentError, TransientError
from tests.conftest import SANDBOX_TOKEN
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, MembershipFactory, deploy_spec

pytestmark = pytest.mark.django_db
IMAGE = "registry.example.com/shop/api:1.0@sha256:" + "a" * 64
BROKEN = "registry.example.com/shop/api:1.1-broken@sha256:" + "b" * 64
CONFIG = ReleaseConfig(env={"GREETING": "hello"}, files={"app.properties": "x=1\n"})


@pytest.fixture
def env(sandbox_cluster):
    return EnvironmentFactory(name="dev", cluster=sandbox_cluster, rollout_deadline_seconds=5)


@pytest.fixture
def app(project):
    return ApplicationFactory(project=project, name="api", replicas=2, exposed=True)


@pytest.fixture
def kube(sandbox_cluster) -> KubeClient:
    return services.cluster_client(sandbox_cluster)


def apply(app, env, image=IMAGE, release="1", config=CONFIG) -> Revision:
    return services.deployment_apply(
        application_id=app.id, environment_id=env.id, image=image, config=config, release=release,
        spec=deploy_spec(app, env, hostname="api.shop.dev.example.test"),
    )


def test_apply_creates_the_objects_and_records_a_revision(app, env, kube):
    revision = apply(app, env)

    assert revision.number == 1 and revision.kind == "apply" and revision.image == IMAGE
    deployment = kube.read("Deployment", "api", "shop-dev")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    for kind in ("Service", "Ingress", "ConfigMap", "NetworkPolicy"):
        assert {o["kind"] for o in revision.manifests} >= {kind}
    assert kube.read("Namespace", "shop-dev")["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "slipway"


def test_applying_the_same_release_twice_changes_nothing(app, env, kube):
    first = apply(app, env)
    services.deployment_verify(revision_id=first.id, poll_interval=0.05)  # status updates settle first
    deployment = kube.read("Deployment", "api", "shop-dev")

    again = apply(app, env)

    after = kube.read("Deployment", "api", "shop-dev")
    assert again.id == first.id and Revision.objects.count() == 1
    assert after["metadata"]["resourceVersion"] == deployment["metadata"]["resourceVersion"]
    assert after["metadata"]["generation"] == deployment["metadata"]["generation"]


def test_verify_waits_for_the_rollout(app, env):
    revision = apply(app, env)

    status = services.deployment_verify(revision_id=revision.id, poll_interval=0.05)

    assert status.done and status.available_replicas == 2


def test_a_broken_image_fails_verification_for_real(app, env):
    revision = apply(app, env, image=BROKEN)

    with pytest.raises(PermanentError, match="ProgressDeadlineExceeded|progress deadline"):
        services.deployment_verify(revision_id=revision.id, poll_interval=0.05)


def test_rollback_restores_the_previous_template(app, env, kube):
    good = apply(app, env, release="1")
    services.deployment_verify(revision_id=good.id, poll_interval=0.05)
    apply(app, env, image=BROKEN, release="2", config=ReleaseConfig(env={"GREETING": "bye"}))

    restored = services.deployment_rollback(application_id=app.id, environment_id=env.id, to_revision_id=good.id)

    deployment = kube.read("Deployment", "api", "shop-dev")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["env"] == [{"name": "GREETING", "value": "hello"}]
    assert (restored.kind, restored.source_id, restored.number) == ("rollback", good.id, 3)
    services.deployment_verify(revision_id=restored.id, poll_interval=0.05)


def test_objects_no_longer_rendered_are_pruned(app, env, kube):
    apply(app, env, release="1")
    app.exposed = False
    app.save()

    apply(app, env, release="2")

    with pytest.raises(PermanentError):
        kube.read("Ingress", "api", "shop-dev")
    assert kube.read("Service", "api", "shop-dev")


def test_decommission_removes_the_application_but_not_the_namespace(app, env, kube):
    apply(app, env)

    services.application_decommission(application_id=app.id, environment_id=env.id)

    with pytest.raises(PermanentError):
        kube.read("Deployment", "api", "shop-dev")
    assert kube.read("Namespace", "shop-dev")
    assert services.revision_live(application=app, environment=env) is None


def test_pods_and_logs_through_the_api(api, app, env, developer):
    services.deployment_verify(revision_id=apply(app, env).id, poll_interval=0.05)
    client = api.as_user(developer)

    pods = client.get(f"/api/v1/applications/{app.id}/pods/?environment=dev").json()

    assert len(pods) == 2 and all(p["ready"] and p["phase"] == "Running" for p in pods)
    logs = client.get(f"/api/v1/applications/{app.id}/pods/{pods[0]['name']}/logs/?environment=dev&tail=1")
    assert logs.status_code == 200 and len(logs.json()["lines"]) == 1


def test_logs_of_a_pod_of_another_application_are_404(api, app, env, developer, project):
    other = ApplicationFactory(project=project, name="web")
    apply(other, env, release="9")
    services.deployment_verify(revision_id=apply(app, env).id, poll_interval=0.05)
    foreign = services.application_pods(actor=developer, application_id=other.id, environment_id=env.id)[0].name

    response = api.as_user(developer).get(f"/api/v1/applications/{app.id}/pods/{foreign}/logs/?environment=dev")

    assert response.status_code == 404


def test_pods_need_a_known_environment(api, app, developer):
    response = api.as_user(developer).get(f"/api/v1/applications/{app.id}/pods/?environment=nowhere")
    assert response.status_code == 400 and "environment" in response.json()["extra"]["fields"]


def test_scale_is_applied_and_audited(api, app, env, developer, kube):
    services.deployment_verify(revision_id=apply(app, env).id, poll_interval=0.05)

    response = api.as_user(developer).post(
        f"/api/v1/applications/{app.id}/scale/", {"environment": "dev", "replicas": 4}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {"environment": "dev", "replicas": 4, "previous_replicas": 2}
    assert kube.read("Deployment", "api", "shop-dev")["spec"]["replicas"] == 4
    from workflows.models import AuditEvent

    event = AuditEvent.objects.get(action="application.scaled")
    assert event.actor == "user:dev" and event.after["replicas"] == 4


def test_scale_beyond_autoscaling_bounds_is_a_400(api, project, env, developer):
    app = ApplicationFactory(project=project, name="auto", autoscaling_min=2, autoscaling_max=4, autoscaling_target_cpu=60)
    apply(app, env)

    response = api.as_user(developer).post(
        f"/api/v1/applications/{app.id}/scale/", {"environment": "dev", "replicas": 9}, format="json"
    )

    assert response.status_code == 400
    assert "between 2 and 4" in response.json()["message"]


def test_approvers_cannot_scale(api, app, env, project):
    approver = MembershipFactory(project=project, role="approver").user
    apply(app, env)
    response = api.as_user(approver).post(
        f"/api/v1/applications/{app.id}/scale/", {"environment": "dev", "replicas": 1}, format="json"
    )
    assert response.status_code == 403


def test_503_is_transient_and_the_next_call_succeeds(app, env, kube, sandbox):
    sandbox.inject_fault("503", count=1)

    with pytest.raises(TransientError, match="cluster sandbox unavailable"):
        kube.version()
    assert kube.version()


def test_429_is_transient(kube, sandbox):
    sandbox.inject_fault("429", count=1)
    with pytest.raises(TransientError, match="HTTP 429"):
        kube.version()


def test_a_hanging_api_server_times_out_as_transient(sandbox_cluster, sandbox):
    client = KubeClient(
        ClusterAccess(name="sandbox", api_server=sandbox.url, token=SANDBOX_TOKEN), timeout=(1.0, 0.5)
    )
    sandbox.inject_fault("hang", count=1, hang_seconds=2)

    with pytest.raises(TransientError, match="cluster sandbox unreachable"):
        client.version()


def test_an_invalid_object_fails_at_once_with_the_api_servers_reason(kube):
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bad-ns"}})
    broken = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad", "namespace": "bad-ns"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "c"}},
                 "spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }
    with pytest.raises(PermanentError, match="rejected apply Deployment bad: .*selector"):
        kube.apply(broken)


def test_an_unreachable_cluster_is_transient_and_named():
    client = KubeClient(ClusterAccess(name="far-away", api_server="http://127.0.0.1:9", token="x"))
    with pytest.raises(TransientError, match="cluster far-away unreachable: .*refused"):
        client.version()


def test_wrong_credentials_are_permanent(sandbox):
    client = KubeClient(ClusterAccess(name="sandbox", api_server=sandbox.url, token="wrong"))
    with pytest.raises(PermanentError, match="refused Slipway's credentials"):
        client.version()


def test_a_kubeconfig_cluster_is_reached_too(sandbox):
    kubeconfig = f"""
apiVersion: v1
kind: Config
current-context: sb
clusters: [{{name: sb, cluster: {{server: "{sandbox.url}"}}}}]
users: [{{name: u, user: {{token: {SANDBOX_TOKEN}}}}}]
contexts: [{{name: sb, context: {{cluster: sb, user: u}}}}]
"""
    client = KubeClient(ClusterAccess(name="kc", api_server="", kubeconfig=kubeconfig))
    assert "sandbox" in client.version()


def test_cluster_health(sandbox_cluster):
    assert services.cluster_health(cluster_id=sandbox_cluster.id).startswith("v1.")


def test_scale_with_nothing_deployed_is_refused(app, env):
    with pytest.raises(ApplicationError, match="not deployed"):
        services.deployment_scale(application_id=app.id, environment_id=env.id, replicas=1)


@pytest.fixture
def http_peer():
    """A real HTTP server on loopback answering every GET with the status code in ``answers``."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    answers = {"status": 200}

    class Peer(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(answers["status"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Peer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/health", answers
    server.shutdown()


def test_verify_runs_the_smoke_check(app, env, http_peer):
    url, answers = http_peer
    app.smoke_check_url = url
    app.save()
    revision = apply(app, env)

    services.deployment_verify(revision_id=revision.id, poll_interval=0.05)
    answers["status"] = 500
    with pytest.raises(PermanentError, match=r"smoke check .* answered HTTP 500"):
        services.deployment_verify(revision_id=revision.id, poll_interval=0.05)
