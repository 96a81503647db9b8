"""kubectl conformance, reads: watch, rollout status, selectors, pagination, Table columns, TLS and tokens.

Debian's kubectl against the sandbox over HTTPS with a bearer token; each assertion is what kubectl
prints against a real API server (server messages quoted as the API server words them).
"""

import base64
import subprocess

import yaml

from deployments.sandbox import resources as r
from deployments.sandbox.tls import generate


def configmap(kubectl, name: str, **labels: str) -> dict:
    return kubectl.sandbox.store.create(r.CONFIGMAPS, "default", {
        "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})


def test_version_and_api_resources_over_tls_with_a_token(kubectl):
    version = kubectl.json("version")
    resources = kubectl("api-resources", "--api-group=apps").stdout

    assert kubectl.sandbox.url.startswith("https://")
    assert version["serverVersion"]["gitVersion"] == "v1.31.0-slipway-sandbox"
    assert resources.splitlines()[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert "deployments   deploy       apps/v1      true         Deployment" in resources


def test_a_wrong_token_is_unauthorized(kubectl, tmp_path):
    config = tmp_path / "wrong-token"
    config.write_text(yaml.safe_dump(kubectl.sandbox.kubeconfig(token="not-the-token")))

    done = kubectl("--kubeconfig", str(config), "get", "pods", check=False)

    assert done.returncode == 1
    assert "You must be logged in to the server (Unauthorized)" in done.stderr


def test_kubectl_refuses_a_server_its_ca_did_not_sign(kubectl, tmp_path):
    other = yaml.safe_load(kubectl.kubeconfig.read_text())
    stranger = generate("127.0.0.1").ca_pem  # a CA of the same shape that did not sign the sandbox's certificate
    other["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(stranger.encode()).decode()
    config = tmp_path / "wrong-ca"
    config.write_text(yaml.safe_dump(other))

    done = kubectl("--kubeconfig", str(config), "get", "pods", check=False)

    assert done.returncode == 1
    assert "x509: certificate signed by unknown authority" in done.stderr


def test_get_watch_sees_an_object_added_modified_and_deleted(kubectl):
    configmap(kubectl, "before")
    watching = subprocess.Popen(["kubectl", f"--kubeconfig={kubectl.kubeconfig}", "get", "configmaps", "--watch",
                                 "--output-watch-events"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        header = watching.stdout.readline()
        first = watching.stdout.readline()  # the list kubectl starts from
        store = kubectl.sandbox.store
        configmap(kubectl, "web")
        store.update(r.CONFIGMAPS, "default", "web", lambda o: {**o, "data": {"k": "v", "more": "x"}})
        store.delete(r.CONFIGMAPS, "default", "web")
        seen = [watching.stdout.readline().split() for _ in range(3)]
    finally:
        watching.terminate()
        _, errors = watching.communicate(timeout=10)

    assert header.split() == ["EVENT", "NAME", "DATA", "AGE"]
    assert first.split()[:3] == ["ADDED", "before", "1"]
    assert [line[:3] for line in seen] == [["ADDED", "web", "1"], ["MODIFIED", "web", "2"], ["DELETED", "web", "2"]]
    assert "error" not in errors.lower()  # no watch errors, no re-list warnings


def test_rollout_status_returns_when_the_rollout_is_done(kubectl):
    kubectl("create", "deployment", "web", "--image=registry.example/web:1", "--replicas=2")

    done = kubectl("rollout", "status", "deployment/web", "--timeout=30s")

    assert done.stdout.strip().endswith('deployment "web" successfully rolled out')
    status = kubectl.json("get", "deployment", "web")["status"]
    assert status["availableReplicas"] == status["updatedReplicas"] == 2
    assert kubectl("get", "deployment", "web").stdout.split()[:8] == [
        "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "web", "2/2", "2"]


def test_rollout_status_reports_a_deadline_exceeded_rollout(kubectl):
    kubectl("create", "deployment", "web", "--image=registry.example/web:1-broken")
    # the default 600 s deadline is 600 s (times the sandbox's time scale), as on a cluster: ask for a short one
    kubectl("patch", "deployment/web", "-p", '{"spec": {"progressDeadlineSeconds": 2}}')

    done = kubectl("rollout", "status", "deployment/web", "--timeout=30s", check=False)

    assert done.returncode == 1
    assert 'error: deployment "web" exceeded its progress deadline' in done.stderr


def test_get_with_label_and_field_selectors_as_json_and_yaml(kubectl):
    configmap(kubectl, "a", tier="web")
    configmap(kubectl, "b", tier="web")
    configmap(kubectl, "c", tier="db")

    as_json = kubectl.json("get", "configmaps", "-l", "tier=web", "--field-selector", "metadata.name!=a")
    as_yaml = yaml.safe_load(kubectl("get", "configmaps", "-l", "tier in (web,db)", "-o", "yaml").stdout)

    assert [item["metadata"]["name"] for item in as_json["items"]] == ["b"]
    assert [item["metadata"]["name"] for item in as_yaml["items"]] == ["a", "b", "c"]
    assert as_yaml["kind"] == "List"


def test_an_unsupported_field_selector_is_a_bad_request(kubectl):
    done = kubectl("get", "deployments", "--field-selector", "spec.replicas=1", check=False)

    assert done.returncode == 1
    assert "Error from server (BadRequest)" in done.stderr
    assert done.stderr.strip().endswith("field label not supported: spec.replicas")


def test_pod_field_selectors_the_server_supports(kubectl):
    kubectl("create", "deployment", "web", "--image=registry.example/web:1", "--replicas=2")
    kubectl("rollout", "status", "deployment/web", "--timeout=30s")

    running = kubectl("get", "pods", "--field-selector=status.phase=Running", "-o", "name").stdout.split()
    pending = kubectl("get", "pods", "--field-selector=status.phase=Pending", "-o", "name").stdout

    assert len(running) == 2 and all(name.startswith("pod/web-") for name in running)
    assert pending == ""


def test_chunked_lists_follow_continue_tokens(kubectl):
    for number in range(7):
        configmap(kubectl, f"cm-{number}")

    done = kubectl("get", "configmaps", "--chunk-size=3", "-v=6")

    assert [line.split()[0] for line in done.stdout.splitlines()[1:]] == [f"cm-{n}" for n in range(7)]
    requests = [line for line in done.stderr.splitlines() if "GET https://" in line and "configmaps" in line]
    assert len(requests) == 3 and "limit=3" in requests[0]
    assert all("continue=" in line for line in requests[1:])


def test_get_pods_wide_prints_the_real_servers_columns(kubectl):
    kubectl("create", "deployment", "web", "--image=registry.example/web:1")
    kubectl("rollout", "status", "deployment/web", "--timeout=30s")

    header, row = kubectl("get", "pods", "-o", "wide").stdout.splitlines()

    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                              "READINESS", "GATES"]
    assert row.split()[1:4] == ["1/1", "Running", "0"]
