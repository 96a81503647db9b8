"""The sandbox's read API as the official client sees it over HTTPS: watch, pagination, Table output,
field selectors. Each expectation is what a real API server answers (its wording quoted)."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import urllib3
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from deployments.sandbox import SandboxCluster
from deployments.sandbox import resources as r

TOKEN = "watch-t0ken"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Iterator[SandboxCluster]:
    with SandboxCluster(port=0, rollout_delay=0.2, token=TOKEN, tls=True, history=50,
                        bookmark_interval=0.2) as cluster:
        cluster.ca_file = tmp_path_factory.mktemp("ca") / "ca.crt"
        cluster.ca_file.write_text(cluster.ca_pem)
        yield cluster


@pytest.fixture(scope="module")
def api_client(sandbox: SandboxCluster) -> Iterator[client.ApiClient]:
    config = client.Configuration(host=sandbox.url)
    config.ssl_ca_cert = str(sandbox.ca_file)
    config.api_key = {"authorization": f"Bearer {TOKEN}"}
    with client.ApiClient(config) as api:
        yield api


@pytest.fixture
def core(api_client) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def namespace(sandbox: SandboxCluster) -> str:
    name = f"w-{uuid.uuid4().hex[:8]}"
    sandbox.store.create(r.NAMESPACES, None, {"metadata": {"name": name}})
    return name


@pytest.fixture
def http(sandbox: SandboxCluster):
    pool = urllib3.PoolManager(ca_certs=str(sandbox.ca_file), retries=False)

    def request(path: str, accept: str = "application/json", **kwargs) -> urllib3.BaseHTTPResponse:
        return pool.request("GET", sandbox.url + path, headers={"Authorization": f"Bearer {TOKEN}", "Accept": accept},
                            **kwargs)

    return request


def configmap(sandbox: SandboxCluster, namespace: str, name: str, **labels: str) -> dict:
    return sandbox.store.create(r.CONFIGMAPS, namespace, {"metadata": {"name": name, "labels": labels},
                                                          "data": {"k": "v"}})


def relabel(sandbox: SandboxCluster, namespace: str, name: str, **labels: str) -> dict:
    return sandbox.store.update(r.CONFIGMAPS, namespace, name,
                                lambda obj: {**obj, "metadata": {**obj["metadata"], "labels": labels}})


def lines(response: urllib3.BaseHTTPResponse) -> list[dict]:
    return [json.loads(line) for line in response.data.decode().splitlines() if line]


def later(seconds: float, *actions) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        for action in actions:
            action()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


# -- watch ----------------------------------------------------------------------------------

def test_the_official_watch_streams_added_modified_deleted_as_typed_objects(sandbox, core, namespace):
    listed = core.list_namespaced_config_map(namespace)
    writer = later(0.2, lambda: configmap(sandbox, namespace, "a"),
                   lambda: sandbox.store.update(r.CONFIGMAPS, namespace, "a", lambda o: {**o, "data": {"k": "w"}}),
                   lambda: sandbox.store.delete(r.CONFIGMAPS, namespace, "a"))

    events = []
    for event in watch.Watch().stream(core.list_namespaced_config_map, namespace,
                                      resource_version=listed.metadata.resource_version, timeout_seconds=3):
        events.append((event["type"], event["object"].metadata.name, (event["object"].data or {}).get("k")))
        if event["type"] == "DELETED":
            break
    writer.join()

    assert events == [("ADDED", "a", "v"), ("MODIFIED", "a", "w"), ("DELETED", "a", "w")]


def test_a_watch_without_a_version_starts_with_the_current_objects(sandbox, http, namespace):
    configmap(sandbox, namespace, "one")
    configmap(sandbox, namespace, "two")

    events = lines(http(f"/api/v1/namespaces/{namespace}/configmaps?watch=true&timeoutSeconds=1"))

    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "one"), ("ADDED", "two")]


def test_a_deployment_rollout_is_followed_by_the_typed_client(sandbox, api_client, namespace):
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}})

    available = None
    for event in watch.Watch().stream(apps.list_namespaced_deployment, namespace, field_selector="metadata.name=web",
                                      timeout_seconds=5):
        available = event["object"].status.available_replicas
        if available == 2:
            break

    assert available == 2


def test_a_too_old_version_is_an_expired_error_event(sandbox, core, http, namespace):
    # given: more writes than the history (50) holds
    first = configmap(sandbox, namespace, "old")
    for number in range(60):
        relabel(sandbox, namespace, "old", n=str(number))
    old = int(first["metadata"]["resourceVersion"])

    # when / then: the stream is 200 with one ERROR event, as the watch cache answers
    response = http(f"/api/v1/namespaces/{namespace}/configmaps?watch=1&resourceVersion={old}")
    assert response.status == 200
    (event,) = lines(response)
    assert event["type"] == "ERROR"
    status = event["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    oldest = int(sandbox.store.resource_version()) - 50
    assert status["message"] == f"too old resource version: {old} ({oldest})"
    # the official client raises it as a 410 when it may not retry (a timeout was given)
    with pytest.raises(ApiException) as raised:
        list(watch.Watch().stream(core.list_namespaced_config_map, namespace, resource_version=str(old),
                                  timeout_seconds=1))
    assert raised.value.status == 410
    # and an exact list at that version is a 410 Status
    listed = http(f"/api/v1/namespaces/{namespace}/configmaps?resourceVersion={old}&resourceVersionMatch=Exact")
    assert listed.status == 410 and listed.json()["reason"] == "Expired"


def test_a_quiet_watch_gets_bookmarks_to_resume_from(sandbox, core, namespace):
    listed = core.list_namespaced_config_map(namespace)
    configmap(sandbox, "default" if namespace != "default" else "kube-system", f"elsewhere-{namespace}")
    stream = watch.Watch()

    events = list(stream.stream(core.list_namespaced_config_map, namespace, allow_watch_bookmarks=True,
                                resource_version=listed.metadata.resource_version, timeout_seconds=1))

    assert events and {e["type"] for e in events} == {"BOOKMARK"}
    bookmark = events[-1]["raw_object"]
    assert (bookmark["kind"], bookmark["apiVersion"]) == ("ConfigMap", "v1")
    assert int(bookmark["metadata"]["resourceVersion"]) > int(listed.metadata.resource_version)
    assert stream.resource_version == bookmark["metadata"]["resourceVersion"]


def test_a_selector_watch_sees_objects_leave_and_enter_it(sandbox, http, namespace):
    configmap(sandbox, namespace, "a", tier="web")
    start = sandbox.store.resource_version()
    relabel(sandbox, namespace, "a", tier="db")
    relabel(sandbox, namespace, "a", tier="web")
    configmap(sandbox, namespace, "b", tier="db")

    events = lines(http(f"/api/v1/namespaces/{namespace}/configmaps?watch=true&labelSelector=tier%3Dweb"
                        f"&resourceVersion={start}&timeoutSeconds=1"))

    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("DELETED", "a"), ("ADDED", "a")]


def test_send_initial_events_ends_with_an_annotated_bookmark(sandbox, http, namespace):
    configmap(sandbox, namespace, "a")
    query = "watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"

    events = lines(http(f"/api/v1/namespaces/{namespace}/configmaps?{query}&timeoutSeconds=1"))

    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "a"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_watch_options_are_validated_as_the_api_server_does(http, namespace):
    response = http(f"/api/v1/namespaces/{namespace}/configmaps?watch=true&sendInitialEvents=true")

    assert response.status == 422
    assert response.json()["message"] == ('ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                                          "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")


def test_deleting_a_namespace_streams_the_deletion_of_its_contents(sandbox, http, namespace):
    configmap(sandbox, namespace, "a")
    start = sandbox.store.resource_version()
    sandbox.store.delete(r.NAMESPACES, None, namespace)

    events = lines(http(f"/api/v1/configmaps?watch=true&resourceVersion={start}&timeoutSeconds=1"))

    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("DELETED", "a")]
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) > int(start)


def test_a_watch_needs_the_token_like_every_request(sandbox, namespace):
    pool = urllib3.PoolManager(ca_certs=str(sandbox.ca_file), retries=False)

    response = pool.request("GET", f"{sandbox.url}/api/v1/namespaces/{namespace}/configmaps?watch=true",
                            headers={"Authorization": "Bearer wrong"})

    assert response.status == 401 and response.json()["reason"] == "Unauthorized"


def test_a_watch_whose_client_left_ends_its_thread(sandbox, http, namespace):
    def request_threads() -> set[threading.Thread]:
        return {thread for thread in threading.enumerate() if "process_request_thread" in thread.name}

    before = request_threads()
    response = http(f"/api/v1/namespaces/{namespace}/configmaps?watch=true", preload_content=False)
    assert response.status == 200
    serving = request_threads() - before  # other servers' requests may come and go meanwhile: follow these only
    assert serving

    response.shutdown()  # the client goes away without reading on
    response.close()

    deadline = time.monotonic() + 10  # the stream notices within its bookmark interval (0.2 s here)
    while any(thread.is_alive() for thread in serving) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(thread.is_alive() for thread in serving)


def test_the_kubeconfig_is_written_for_its_owner_only(sandbox, tmp_path):
    earlier = tmp_path / "kube" / "config"  # one that anyone could read, from before
    earlier.parent.mkdir()
    earlier.write_text("old")
    earlier.chmod(0o644)

    path = sandbox.write_kubeconfig(earlier)

    written = yaml.safe_load(path.read_text())
    assert path.stat().st_mode & 0o777 == 0o600
    assert written["users"][0]["user"] == {"token": TOKEN}
    ca = base64.b64decode(written["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    assert ca == sandbox.ca_pem and written["clusters"][0]["cluster"]["server"] == sandbox.url


# -- pagination -------------------------------------------------------------------------------

def test_pages_are_consistent_at_the_first_pages_version(sandbox, core, namespace):
    for name in "abcde":
        configmap(sandbox, namespace, name)

    first = core.list_namespaced_config_map(namespace, limit=2)
    configmap(sandbox, namespace, "aa")  # sorts inside the next page; created after the first one was read
    sandbox.store.delete(r.CONFIGMAPS, namespace, "e")
    second = core.list_namespaced_config_map(namespace, limit=2, _continue=first.metadata._continue)
    third = core.list_namespaced_config_map(namespace, limit=2, _continue=second.metadata._continue)

    assert first.metadata.remaining_item_count == 3
    assert [c.metadata.name for page in (first, second, third) for c in page.items] == list("abcde")
    assert third.metadata._continue is None and third.metadata.remaining_item_count is None
    assert first.metadata.resource_version == second.metadata.resource_version == third.metadata.resource_version


def test_a_selector_list_has_no_remaining_item_count(sandbox, core, namespace):
    for name in "abc":
        configmap(sandbox, namespace, name, tier="web")

    page = core.list_namespaced_config_map(namespace, limit=1, label_selector="tier=web")

    assert page.metadata._continue and page.metadata.remaining_item_count is None


def test_an_expired_continue_token_is_410_and_a_garbled_one_400(sandbox, core, http, namespace):
    for name in "abc":
        configmap(sandbox, namespace, name)
    token = core.list_namespaced_config_map(namespace, limit=1).metadata._continue
    for number in range(60):
        relabel(sandbox, namespace, "a", n=str(number))

    expired = http(f"/api/v1/namespaces/{namespace}/configmaps?limit=1&continue={token}")
    garbled = http(f"/api/v1/namespaces/{namespace}/configmaps?limit=1&continue=bm90LWpzb24")

    assert expired.status == 410 and expired.json()["reason"] == "Expired"
    assert expired.json()["message"] == ("The provided continue parameter is too old to display a consistent list "
                                         "result. You can start a new list without the continue parameter.")
    assert garbled.status == 400 and garbled.json()["message"] == "invalid continue token: continue key is not valid"


# -- Table -----------------------------------------------------------------------------------

def test_deployments_as_a_table_have_the_real_columns(sandbox, http, namespace):
    sandbox.store.create(r.DEPLOYMENTS, namespace, {"metadata": {"name": "web"}, "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "web:1"}]}}}})

    document = http(f"/apis/apps/v1/namespaces/{namespace}/deployments", accept=TABLE).json()

    assert (document["kind"], document["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    columns = [(c["name"], c["priority"]) for c in document["columnDefinitions"]]
    assert columns == [("Name", 0), ("Ready", 0), ("Up-to-date", 0), ("Available", 0), ("Age", 0),
                       ("Containers", 1), ("Images", 1), ("Selector", 1)]
    (row,) = document["rows"]
    assert row["cells"][0] == "web" and row["cells"][1].endswith("/3") and row["cells"][5:] == ["c", "web:1", "app=web"]
    assert row["object"]["kind"] == "PartialObjectMetadata" and row["object"]["metadata"]["name"] == "web"


def test_include_object_controls_what_each_row_carries(sandbox, http, namespace):
    configmap(sandbox, namespace, "a")
    path = f"/api/v1/namespaces/{namespace}/configmaps"

    full = http(f"{path}?includeObject=Object", accept=TABLE).json()["rows"][0]
    bare = http(f"{path}?includeObject=None", accept=TABLE).json()["rows"][0]
    wrong = http(f"{path}?includeObject=Everything", accept=TABLE)

    assert full["object"]["kind"] == "ConfigMap" and full["object"]["data"] == {"k": "v"}
    assert "object" not in bare and bare["cells"][:2] == ["a", 1]
    assert wrong.status == 400


# -- field selectors -----------------------------------------------------------------------

def test_field_selectors_work_only_where_the_real_server_has_them(sandbox, core, http, namespace):
    configmap(sandbox, namespace, "a")
    configmap(sandbox, namespace, "b")

    by_name = core.list_namespaced_config_map(namespace, field_selector="metadata.name!=a")
    refused = http(f"/apis/apps/v1/namespaces/{namespace}/deployments?fieldSelector=spec.replicas%3D1")
    pods = http(f"/api/v1/namespaces/{namespace}/pods?fieldSelector=status.phase%3DRunning,spec.nodeName%3D")

    assert [c.metadata.name for c in by_name.items] == ["b"]
    assert refused.status == 400 and refused.json()["message"] == "field label not supported: spec.replicas"
    assert pods.status == 200
