"""The Kubernetes sandbox, driven over HTTP by the official client exactly as the platform drives it."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from deployments.sandbox import SandboxCluster
from deployments.sandbox.pods import is_broken_image

TOKEN = "t0ken"
APPLY = "application/apply-patch+yaml"
IMAGE = "registry.example/shop/web:1.0"
T = TypeVar("T")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxCluster]:
    cluster = SandboxCluster(port=0, rollout_delay=0.2, token=TOKEN)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(autouse=True)
def no_leftover_faults(sandbox: SandboxCluster) -> Iterator[None]:
    yield
    sandbox.clear_faults()  # a failed fault test must not break the tests after it


def make_api_client(sandbox: SandboxCluster, token: str | None = TOKEN) -> client.ApiClient:
    config = client.Configuration(host=sandbox.url)
    if token is not None:
        config.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(config)


@pytest.fixture(scope="module")
def api_client(sandbox: SandboxCluster) -> Iterator[client.ApiClient]:
    with make_api_client(sandbox) as api:
        yield api


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def http(sandbox: SandboxCluster) -> Callable[..., urllib3.BaseHTTPResponse]:
    """Raw authenticated HTTP, for what the typed client cannot express."""
    pool = urllib3.PoolManager(retries=False)

    def request(method: str, path: str, body: object = None) -> urllib3.BaseHTTPResponse:
        return pool.request(method, sandbox.url + path, json=body,
                            headers={"Authorization": f"Bearer {TOKEN}"})

    return request


def deployment(name: str, image: str = IMAGE, replicas: int = 2, **spec: object) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "slipway"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}],
                                         "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}}]},
            },
            **spec,
        },
    }


def apply(apps: client.AppsV1Api, namespace: str, body: dict) -> client.V1Deployment:
    return apps.patch_namespaced_deployment(body["metadata"]["name"], namespace, body, field_manager="slipway",
                                            force=True, _content_type=APPLY)


def wait_for(probe: Callable[[], T], timeout: float = 5.0) -> T:
    """Poll until `probe()` is truthy and return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        time.sleep(0.02)


def rollout_state(apps: client.AppsV1Api, namespace: str, name: str) -> str:
    """kubectl rollout status's verdict: "failed", "progressing" or "complete"."""
    dep = apps.read_namespaced_deployment_status(name, namespace)
    status = dep.status
    if dep.metadata.generation > (status.observed_generation or 0):
        return "progressing"
    progressing = next((c for c in status.conditions or [] if c.type == "Progressing"), None)
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        return "failed"
    updated, available = status.updated_replicas or 0, status.available_replicas or 0
    if updated < dep.spec.replicas or (status.replicas or 0) > updated or available < updated:
        return "progressing"
    return "complete"


def wait_for_rollout(apps: client.AppsV1Api, namespace: str, name: str) -> None:
    wait_for(lambda: rollout_state(apps, namespace, name) == "complete")


def status_of(error: ApiException) -> dict:
    return json.loads(error.body)


def pods_of(core: client.CoreV1Api, namespace: str, app: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(namespace, label_selector=f"app={app}").items


# Discovery


def test_version_and_discovery_parse_with_the_official_models(api_client: client.ApiClient) -> None:
    version = client.VersionApi(api_client).get_code()
    assert version.git_version == "v1.31.0-slipway-sandbox"
    assert (version.major, version.minor) == ("1", "31")

    assert client.CoreApi(api_client).get_api_versions().versions == ["v1"]
    groups = {g.name: g.preferred_version.group_version for g in client.ApisApi(api_client).get_api_versions().groups}
    assert groups == {"apps": "apps/v1", "networking.k8s.io": "networking.k8s.io/v1",
                      "autoscaling": "autoscaling/v2", "policy": "policy/v1", "batch": "batch/v1",
                      "events.k8s.io": "events.k8s.io/v1"}
    apps_resources = {r.name: r for r in client.AppsV1Api(api_client).get_api_resources().resources}
    assert apps_resources["deployments"].namespaced
    assert apps_resources["deployments/scale"].kind == "Scale"
    core_resources = {r.name for r in client.CoreV1Api(api_client).get_api_resources().resources}
    assert {"namespaces", "configmaps", "secrets", "services", "pods", "pods/log", "resourcequotas"} <= core_resources


# Namespaces


def test_namespace_create_list_by_label_apply_and_delete(core: client.CoreV1Api) -> None:
    name = f"ns-{uuid.uuid4().hex[:8]}"
    created = core.create_namespace({"metadata": {"name": name, "labels": {"slipway.dev/project": "shop"}}})
    assert created.status.phase == "Active"
    assert created.metadata.labels["kubernetes.io/metadata.name"] == name

    listed = core.list_namespace(label_selector="slipway.dev/project=shop").items
    assert [ns.metadata.name for ns in listed] == [name]

    applied = core.patch_namespace(name, {"apiVersion": "v1", "kind": "Namespace",
                                          "metadata": {"name": name, "labels": {"slipway.dev/project": "shop",
                                                                                 "tier": "gold"}}},
                                   field_manager="slipway", _content_type=APPLY)
    assert applied.metadata.labels["tier"] == "gold"
    core.create_namespaced_config_map(name, {"metadata": {"name": "settings"}})

    core.delete_namespace(name)
    with pytest.raises(ApiException) as missing:
        core.read_namespace(name)
    assert missing.value.status == 404
    assert core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={name}").items == []


def test_apply_creates_a_namespace_that_does_not_exist_yet(core: client.CoreV1Api) -> None:
    name = f"ns-{uuid.uuid4().hex[:8]}"
    applied = core.patch_namespace(name, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                                   field_manager="slipway", _content_type=APPLY)
    assert core.read_namespace(name).metadata.uid == applied.metadata.uid
    core.delete_namespace(name)


# Writes: apply, replace, patch, errors


def test_apply_twice_changes_nothing_and_a_new_image_bumps_generation(apps: client.AppsV1Api, namespace: str) -> None:
    created = apply(apps, namespace, deployment("web"))
    assert created.metadata.generation == 1
    assert created.metadata.uid and created.metadata.creation_timestamp
    wait_for_rollout(apps, namespace, "web")  # the controller's status writes bump resourceVersion until then
    first = apps.read_namespaced_deployment("web", namespace)
    time.sleep(0.2)  # a settled rollout writes nothing more

    again = apply(apps, namespace, deployment("web"))
    assert (again.metadata.resource_version, again.metadata.generation) == (
        first.metadata.resource_version, first.metadata.generation)

    changed = apply(apps, namespace, deployment("web", image="registry.example/shop/web:1.1"))
    assert changed.metadata.generation == 2
    assert int(changed.metadata.resource_version) > int(first.metadata.resource_version)
    assert changed.spec.template.spec.containers[0].image.endswith(":1.1")
    assert [entry.manager for entry in changed.metadata.managed_fields] == ["slipway"]

    everywhere = apps.list_deployment_for_all_namespaces(label_selector="app.kubernetes.io/managed-by=slipway")
    assert [(d.metadata.namespace, d.metadata.name) for d in everywhere.items] == [(namespace, "web")]


def test_apply_drops_labels_the_manager_no_longer_sets(core: client.CoreV1Api, namespace: str) -> None:
    def apply_config_map(labels: dict) -> client.V1ConfigMap:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "labels": labels},
                "data": {"a": "1"}}
        return core.patch_namespaced_config_map("cfg", namespace, body, field_manager="slipway",
                                                _content_type=APPLY)

    apply_config_map({"keep": "yes", "drop": "soon"})
    core.patch_namespaced_config_map("cfg", namespace, {"metadata": {"labels": {"other": "manager"}}})
    result = apply_config_map({"keep": "yes"})
    assert result.metadata.labels == {"keep": "yes", "other": "manager"}


def test_replace_needs_the_current_resource_version(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}, "data": {"k": "1"}})
    created.data = {"k": "2"}
    replaced = core.replace_namespaced_config_map("cfg", namespace, created)
    assert replaced.data == {"k": "2"}

    created.data = {"k": "3"}  # still carries the first resourceVersion
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("cfg", namespace, created)
    assert stale.value.status == 409
    assert status_of(stale.value)["reason"] == "Conflict"

    with pytest.raises(ApiException) as missing:
        core.replace_namespaced_config_map("absent", namespace, {"metadata": {"name": "absent"}})
    assert missing.value.status == 404

    with pytest.raises(ApiException) as duplicate:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}})
    assert (duplicate.value.status, status_of(duplicate.value)["reason"]) == (409, "AlreadyExists")


def test_strategic_merge_patch_of_template_annotations_restarts_the_rollout(
        apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str) -> None:
    apply(apps, namespace, deployment("web"))
    wait_for_rollout(apps, namespace, "web")
    old_pods = {pod.metadata.name for pod in pods_of(core, namespace, "web")}

    patched = apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}}})
    assert patched.metadata.generation == 2
    assert patched.spec.template.metadata.labels == {"app": "web"}
    assert rollout_state(apps, namespace, "web") == "progressing"

    wait_for_rollout(apps, namespace, "web")
    new_pods = pods_of(core, namespace, "web")
    assert len(new_pods) == 2 and not old_pods & {pod.metadata.name for pod in new_pods}


def test_apply_with_a_name_that_differs_from_the_url_is_a_bad_request(
        apps: client.AppsV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as error:
        apps.patch_namespaced_deployment("other", namespace, deployment("web"), field_manager="slipway",
                                         _content_type=APPLY)
    assert error.value.status == 400
    assert "does not match the name on the URL" in status_of(error.value)["message"]


def test_apply_without_field_manager_is_rejected(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as error:
        core.patch_namespaced_config_map("cfg", namespace, {"apiVersion": "v1", "kind": "ConfigMap",
                                                            "metadata": {"name": "cfg"}}, _content_type=APPLY)
    assert error.value.status == 422
    assert "fieldManager: Required value" in status_of(error.value)["message"]


def test_invalid_deployments_are_rejected_with_the_real_messages(apps: client.AppsV1Api, namespace: str) -> None:
    mismatched = deployment("web")
    mismatched["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as error:
        apps.create_namespaced_deployment(namespace, mismatched)
    status = status_of(error.value)
    assert (error.value.status, status["reason"]) == (422, "Invalid")
    assert status["message"].startswith('Deployment.apps "web" is invalid: spec.template.metadata.labels')
    assert "`selector` does not match template `labels`" in status["message"]

    no_image = deployment("web")
    del no_image["spec"]["template"]["spec"]["containers"][0]["image"]
    with pytest.raises(ApiException) as error:
        apps.create_namespaced_deployment(namespace, no_image)
    assert "spec.template.spec.containers[0].image: Required value" in status_of(error.value)["message"]

    with pytest.raises(ApiException) as error:
        apps.create_namespaced_deployment(namespace, deployment("Web_1"))
    assert error.value.status == 422
    assert "RFC 1123 subdomain" in status_of(error.value)["message"]

    wrong_kind = {**deployment("web"), "kind": "ConfigMap"}
    with pytest.raises(ApiException) as error:
        apps.create_namespaced_deployment(namespace, wrong_kind)
    assert error.value.status == 400


def test_selector_is_immutable(apps: client.AppsV1Api, namespace: str) -> None:
    apply(apps, namespace, deployment("web"))
    changed = deployment("web")
    changed["spec"]["selector"]["matchLabels"]["track"] = "canary"
    changed["spec"]["template"]["metadata"]["labels"]["track"] = "canary"
    with pytest.raises(ApiException) as error:
        apply(apps, namespace, changed)
    assert error.value.status == 422
    assert "field is immutable" in status_of(error.value)["message"]


def test_objects_in_a_missing_namespace_are_not_found(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as error:
        core.create_namespaced_config_map("nowhere", {"metadata": {"name": "cfg"}})
    assert error.value.status == 404
    assert status_of(error.value)["message"] == 'namespaces "nowhere" not found'

    with pytest.raises(ApiException) as error:
        apply(apps, "nowhere", deployment("web"))
    assert error.value.status == 404


def test_other_kinds_round_trip(api_client: client.ApiClient, core: client.CoreV1Api, namespace: str) -> None:
    secret = core.create_namespaced_secret(namespace, {"metadata": {"name": "db"}, "stringData": {"pw": "hunter2"}})
    assert secret.data == {"pw": "aHVudGVyMg=="} and secret.type == "Opaque"
    service = core.create_namespaced_service(namespace, {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    assert service.spec.cluster_ip.startswith("10.96.")
    assert core.delete_namespaced_service("web", namespace).metadata.name == "web"
    quota = core.create_namespaced_resource_quota(namespace, {"metadata": {"name": "q"},
                                                              "spec": {"hard": {"pods": "10"}}})
    assert quota.spec.hard == {"pods": "10"}

    networking = client.NetworkingV1Api(api_client)
    networking.create_namespaced_ingress(namespace, {"metadata": {"name": "web"}, "spec": {"rules": [
        {"host": "shop.example", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
            "service": {"name": "web", "port": {"number": 80}}}}]}}]}})
    networking.create_namespaced_network_policy(namespace, {"metadata": {"name": "deny"},
                                                            "spec": {"podSelector": {}}})
    assert [p.metadata.name for p in networking.list_namespaced_network_policy(namespace).items] == ["deny"]
    autoscaling = client.AutoscalingV2Api(api_client)
    hpa = autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, {"metadata": {"name": "web"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 3}})
    assert hpa.metadata.generation == 1
    assert autoscaling.delete_namespaced_horizontal_pod_autoscaler("web", namespace)["status"] == "Success"
    assert networking.read_namespaced_ingress("web", namespace).spec.rules[0].host == "shop.example"


def test_status_is_only_written_through_its_subresource(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_service(namespace, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    patched = core.patch_namespaced_service_status(
        "web", namespace, {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}})
    assert patched.status.load_balancer.ingress[0].ip == "192.0.2.10"

    replaced = core.replace_namespaced_service("web", namespace, {
        "metadata": {"name": "web", "labels": {"edited": "yes"}}, "spec": {"ports": [{"port": 80}]},
        "status": {"loadBalancer": {}}})
    assert replaced.metadata.labels == {"edited": "yes"}
    assert replaced.spec.cluster_ip == patched.spec.cluster_ip  # allocated once, kept by a replace without it
    assert replaced.status.load_balancer.ingress[0].ip == "192.0.2.10"


# Rollouts


def test_rollout_is_in_progress_then_complete_and_replaces_old_pods(
        apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str) -> None:
    apply(apps, namespace, deployment("web", replicas=3))
    assert rollout_state(apps, namespace, "web") == "progressing"
    wait_for_rollout(apps, namespace, "web")
    dep = apps.read_namespaced_deployment_status("web", namespace)
    assert dep.status.observed_generation == dep.metadata.generation == 1
    assert dep.status.available_replicas == dep.status.ready_replicas == 3
    progressing = next(c for c in dep.status.conditions if c.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("True", "NewReplicaSetAvailable")

    first_pods = pods_of(core, namespace, "web")
    assert len(first_pods) == 3
    pod = first_pods[0]
    assert pod.status.phase == "Running" and pod.status.container_statuses[0].ready
    # pods are owned by the ReplicaSet `web-<pod-template-hash>`, which the Deployment owns
    replica_set = apps.read_namespaced_replica_set(pod.metadata.owner_references[0].name, namespace)
    assert replica_set.metadata.owner_references[0].uid == dep.metadata.uid
    assert replica_set.metadata.name == f"web-{pod.metadata.labels['pod-template-hash']}"
    assert pod.metadata.name.startswith(f"{replica_set.metadata.name}-")

    apply(apps, namespace, deployment("web", image="registry.example/shop/web:2.0", replicas=3))
    assert rollout_state(apps, namespace, "web") == "progressing"
    wait_for_rollout(apps, namespace, "web")
    new_pods = pods_of(core, namespace, "web")
    assert {p.spec.containers[0].image for p in new_pods} == {"registry.example/shop/web:2.0"}
    assert len(new_pods) == 3

    apps.delete_namespaced_deployment("web", namespace)
    assert pods_of(core, namespace, "web") == []


def test_broken_image_fails_the_rollout_and_keeps_old_pods_serving(
        apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str) -> None:
    apply(apps, namespace, deployment("web", progressDeadlineSeconds=1))
    wait_for_rollout(apps, namespace, "web")

    broken_image = "registry.example/shop/web:1.1-broken"
    apply(apps, namespace, deployment("web", image=broken_image, progressDeadlineSeconds=1))
    wait_for(lambda: rollout_state(apps, namespace, "web") == "failed")

    status = apps.read_namespaced_deployment_status("web", namespace).status
    progressing = next(c for c in status.conditions if c.type == "Progressing")
    assert (progressing.status, progressing.reason) == ("False", "ProgressDeadlineExceeded")
    # maxSurge 25% of 2 rounds up to 1 new pod, maxUnavailable 25% rounds down to 0: no old pod may go
    assert (status.available_replicas, status.updated_replicas, status.replicas) == (2, 1, 3)

    pods = pods_of(core, namespace, "web")
    broken = [p for p in pods if p.spec.containers[0].image == broken_image]
    healthy = [p for p in pods if p.spec.containers[0].image == IMAGE]
    assert len(broken) == 1 and len(healthy) == 2
    assert all(p.status.container_statuses[0].ready for p in healthy)
    container = broken[0].status.container_statuses[0]
    assert not container.ready and container.restart_count >= 1
    assert container.state.waiting.reason == "CrashLoopBackOff"
    log = core.read_namespaced_pod_log(broken[0].metadata.name, namespace)
    assert "application failed to start" in log and "-broken" in log

    apply(apps, namespace, deployment("web", progressDeadlineSeconds=1))  # roll back
    wait_for_rollout(apps, namespace, "web")
    assert {p.spec.containers[0].image for p in pods_of(core, namespace, "web")} == {IMAGE}


def test_only_the_tag_marks_an_image_broken() -> None:
    assert is_broken_image("registry.example/app:1.2-broken")
    assert not is_broken_image("registry.example/app-broken:1.2")
    assert not is_broken_image("registry.example:5000/app-broken")
    assert is_broken_image("registry.example/app:1.2-broken@sha256:" + "0" * 64)  # pinned, as Slipway deploys
    assert not is_broken_image("registry.example/app-broken@sha256:" + "0" * 64)


def test_scale_subresource_drives_the_pods(apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str) -> None:
    apply(apps, namespace, deployment("web", replicas=1))
    wait_for_rollout(apps, namespace, "web")

    scale = apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 3}})
    assert scale.spec.replicas == 3
    assert apps.read_namespaced_deployment("web", namespace).metadata.generation == 2
    wait_for_rollout(apps, namespace, "web")
    assert len(pods_of(core, namespace, "web")) == 3
    read = apps.read_namespaced_deployment_scale("web", namespace)
    assert (read.status.replicas, read.status.selector) == (3, "app=web")

    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 0}})
    wait_for_rollout(apps, namespace, "web")
    assert pods_of(core, namespace, "web") == []


# Pods


def test_list_pods_by_label_and_field_selectors(core: client.CoreV1Api, namespace: str) -> None:
    for name, labels in {"a": {"tier": "web", "env": "prod"}, "b": {"tier": "db", "env": "prod"},
                         "c": {"tier": "cache"}}.items():
        core.create_namespaced_pod(namespace, {"metadata": {"name": name, "labels": labels},
                                               "spec": {"containers": [{"name": "main", "image": IMAGE}]}})

    def names(**query: str) -> list[str]:
        return [pod.metadata.name for pod in core.list_namespaced_pod(namespace, **query).items]

    assert names(label_selector="tier in (web,db)") == ["a", "b"]
    assert names(label_selector="tier notin (web,db)") == ["c"]
    assert names(label_selector="env!=prod") == ["c"]
    assert names(label_selector="env") == ["a", "b"]
    assert names(label_selector="!env") == ["c"]
    assert names(label_selector="tier==web,env=prod") == ["a"]
    assert names(field_selector="metadata.name=b") == ["b"]
    with pytest.raises(ApiException) as error:
        names(label_selector="tier in web")
    assert error.value.status == 400


def test_pod_log_is_text_and_honours_tail_lines(apps: client.AppsV1Api, core: client.CoreV1Api,
                                                namespace: str) -> None:
    apply(apps, namespace, deployment("web", replicas=1))
    wait_for_rollout(apps, namespace, "web")
    pod = pods_of(core, namespace, "web")[0].metadata.name

    full = core.read_namespaced_pod_log(pod, namespace, container="web")
    assert isinstance(full, str)
    assert "listening on 0.0.0.0:8080" in full and "GET /ready" in full
    last = core.read_namespaced_pod_log(pod, namespace, tail_lines=1)
    assert last == full.splitlines(keepends=True)[-1]

    with pytest.raises(ApiException) as error:
        core.read_namespaced_pod_log("no-such-pod", namespace)
    assert error.value.status == 404 and status_of(error.value)["reason"] == "NotFound"


# Faults, auth, concurrency, routing


def test_injected_503s_fail_then_the_api_recovers(core: client.CoreV1Api, http: Callable) -> None:
    assert http("POST", "/sandbox/faults", {"mode": "503", "count": 2}).status == 200
    for _ in range(2):
        with pytest.raises(ApiException) as error:
            core.read_namespace("default")
        assert error.value.status == 503
        assert status_of(error.value)["reason"] == "ServiceUnavailable"
    assert core.read_namespace("default").metadata.name == "default"


def test_a_fault_for_one_method_spares_the_others(sandbox: SandboxCluster, core: client.CoreV1Api,
                                                  namespace: str, http: Callable) -> None:
    sandbox.inject_fault("503", 1, method="DELETE")
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}})
    assert core.read_namespaced_config_map("cfg", namespace).metadata.name == "cfg"
    with pytest.raises(ApiException) as error:
        core.delete_namespaced_config_map("cfg", namespace)
    assert error.value.status == 503
    core.delete_namespaced_config_map("cfg", namespace)
    assert http("POST", "/sandbox/faults", {"mode": "503", "method": "BREW"}).status == 400


def test_injected_429_carries_retry_after(sandbox: SandboxCluster, core: client.CoreV1Api) -> None:
    sandbox.inject_fault("429", 1)
    with pytest.raises(ApiException) as error:
        core.patch_namespace("default", {"metadata": {"labels": {"touched": "yes"}}})
    assert error.value.status == 429
    assert error.value.headers["Retry-After"] == "1"

    # urllib3's default Retry honours Retry-After for idempotent methods: a GET just succeeds, a second later.
    sandbox.inject_fault("429", 1)
    started = time.monotonic()
    assert core.read_namespace("default").metadata.name == "default"
    assert time.monotonic() - started >= 0.9


def test_injected_hang_times_out_the_client_and_writes_nothing(
        sandbox: SandboxCluster, core: client.CoreV1Api, namespace: str) -> None:
    sandbox.inject_fault("hang", 1, hang_seconds=1)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}}, _request_timeout=0.3)
    assert time.monotonic() - started < 0.9
    with pytest.raises(ApiException) as error:
        core.read_namespaced_config_map("cfg", namespace)
    assert error.value.status == 404


def test_a_slow_request_is_held_then_served(sandbox: SandboxCluster, core: client.CoreV1Api, namespace: str) -> None:
    # a wedged API server that recovers: the write held back lands after all
    sandbox.inject_fault("slow", 1, hang_seconds=0.2, method="POST")
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "late"}})
    assert sandbox.faults.describe() is None
    assert core.read_namespaced_config_map("late", namespace).metadata.name == "late"


def test_requests_need_the_bearer_token(sandbox: SandboxCluster) -> None:
    for token in ("wrong", None):
        with make_api_client(sandbox, token) as api, pytest.raises(ApiException) as error:
            client.CoreV1Api(api).list_namespace()
        assert error.value.status == 401
        assert status_of(error.value)["reason"] == "Unauthorized"


def test_concurrent_applies_all_succeed_with_distinct_resource_versions(
        core: client.CoreV1Api, namespace: str) -> None:
    # Eight field managers apply their own label to one ConfigMap: a lost update would lose a label.
    barrier = threading.Barrier(8)

    def worker(index: int) -> list[str]:
        barrier.wait()
        versions = []
        for round_ in range(5):
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "shared", "labels": {f"worker-{index}": str(round_)}}}
            applied = core.patch_namespaced_config_map("shared", namespace, body, field_manager=f"worker-{index}",
                                                       _content_type=APPLY)
            versions.append(applied.metadata.resource_version)
        return versions

    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = [v for result in pool.map(worker, range(8)) for v in result]  # re-raises a worker's error
    assert len(versions) == len(set(versions)) == 40
    shared = core.read_namespaced_config_map("shared", namespace)
    assert shared.metadata.labels == {f"worker-{i}": "4" for i in range(8)}
    assert len(shared.metadata.managed_fields) == 8


def test_unknown_paths_and_verbs_answer_status_objects(http: Callable) -> None:
    missing = http("GET", "/apis/apps/v1/namespaces/default/widgets")
    assert missing.status == 404 and missing.json()["kind"] == "Status"
    not_allowed = http("POST", "/apis/apps/v1/namespaces/default/deployments/web")
    assert not_allowed.status == 405 and not_allowed.json()["reason"] == "MethodNotAllowed"
    json_patch = http("PATCH", "/api/v1/namespaces/default", [{"op": "add", "path": "/x", "value": 1}])
    assert json_patch.status == 415  # sent as application/json; only merge and apply patches are served


def test_reset_and_state_endpoints() -> None:
    with SandboxCluster(port=0, rollout_delay=0) as other:
        pool = urllib3.PoolManager(retries=False)
        with make_api_client(other, token=None) as api:
            client.CoreV1Api(api).create_namespaced_config_map("default", {"metadata": {"name": "cfg"}})
        assert pool.request("GET", other.url + "/sandbox/state").json()["objects"]["configmaps"] == 1
        assert pool.request("POST", other.url + "/sandbox/reset").status == 200
        state = pool.request("GET", other.url + "/sandbox/state").json()
        assert state["objects"]["configmaps"] == 0 and state["objects"]["namespaces"] == 2
