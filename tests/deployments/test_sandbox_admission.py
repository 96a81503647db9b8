"""The sandbox's patches, admission, dry-run and OpenAPI documents over HTTP, as a real API server answers them.

The session's sandbox, driven with plain HTTP requests; every namespace is new.
"""

import json
import uuid

import pytest
import requests

from tests.conftest import SANDBOX_TOKEN

SMP = "application/strategic-merge-patch+json"


@pytest.fixture
def api(sandbox):
    """`api(method, path, body=None, content_type=..., **params)` → response, in a namespace of its own."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {SANDBOX_TOKEN}"
    namespace = f"adm-{uuid.uuid4().hex[:8]}"

    def call(method: str, path: str, body=None, content_type: str = "application/json", **params):
        data = None if body is None else json.dumps(body)
        return session.request(method, sandbox.url + path.format(ns=namespace), data=data, params=params,
                               headers={"Content-Type": content_type}, timeout=10)

    assert call("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}}).status_code == 201
    yield call
    call("DELETE", f"/api/v1/namespaces/{namespace}")
    session.close()


def deployment(**spec_extra) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx",
                                                           "env": [{"name": "A", "value": "1"},
                                                                   {"name": "B", "value": "2"}]}]}}},
            **spec_extra}


DEPLOYMENTS = "/apis/apps/v1/namespaces/{ns}/deployments"


def containers(api) -> list[dict]:
    return api("GET", DEPLOYMENTS + "/web").json()["spec"]["template"]["spec"]["containers"]


def test_strategic_merge_directives_order_replace_and_retain(api):
    api("POST", DEPLOYMENTS, deployment())

    # $setElementOrder orders the merged list; the directive itself is never stored
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "log"}, {"name": "web"}],
        "containers": [{"name": "log", "image": "busybox"}]}}}}
    assert api("PATCH", DEPLOYMENTS + "/web", patch, SMP).status_code == 200
    assert [c["name"] for c in containers(api)] == ["log", "web"]

    # env merges by name; `$patch: replace` on a list replaces it
    api("PATCH", DEPLOYMENTS + "/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "env": [{"name": "B", "value": "two"}]}]}}}}, SMP)
    assert containers(api)[1]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}]
    api("PATCH", DEPLOYMENTS + "/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:2"}, {"$patch": "replace"}]}}}}, SMP)
    assert containers(api) == [{"name": "web", "image": "nginx:2"}]

    # $retainKeys (the strategy's retainKeys): only the named keys survive
    api("PATCH", DEPLOYMENTS + "/web", {"spec": {"strategy": {
        "$retainKeys": ["type"], "type": "Recreate"}}}, SMP)
    stored = api("GET", DEPLOYMENTS + "/web").json()
    assert stored["spec"]["strategy"] == {"type": "Recreate"}
    assert "$" not in json.dumps(stored)


def test_strategic_merge_deletes_from_a_primitive_list(api):
    api("POST", "/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "p", "finalizers": ["a/x", "b/y"]},
                                                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    answer = api("PATCH", "/api/v1/namespaces/{ns}/pods/p",
                 {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/x"]}}, SMP)
    assert answer.json()["metadata"]["finalizers"] == ["b/y"]


@pytest.mark.parametrize(("body", "content_type"), [
    ({"$patch": "delete"}, SMP),
    ([{"op": "replace", "path": "", "value": 5}], "application/json-patch+json"),
    ([{"op": "explode"}], "application/json-patch+json"),
    ({"spec": 1}, "application/json-patch+json"),
])
def test_a_patch_that_leaves_no_object_is_refused_not_a_500(api, body, content_type):
    api("POST", DEPLOYMENTS, deployment())
    answer = api("PATCH", DEPLOYMENTS + "/web", body, content_type)
    assert answer.status_code in (400, 422)
    assert answer.json()["kind"] == "Status"
    assert api("GET", DEPLOYMENTS + "/web").json()["metadata"]["generation"] == 1


def test_an_element_order_naming_odd_items_is_harmless(api):
    api("POST", DEPLOYMENTS, deployment())
    answer = api("PATCH", DEPLOYMENTS + "/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "$setElementOrder/env": [{"name": ["odd"]}, {"name": "B"}]}]}}}}, SMP)
    assert answer.status_code == 200
    assert [e["name"] for e in containers(api)[0]["env"]] == ["B", "A"]
    assert "$" not in answer.text


def test_json_patch_errors_are_422_and_change_nothing(api):
    api("POST", DEPLOYMENTS, deployment())
    answer = api("PATCH", DEPLOYMENTS + "/web", [{"op": "remove", "path": "/spec/nothing"}],
                 "application/json-patch+json")
    assert answer.status_code == 422
    assert api("GET", DEPLOYMENTS + "/web").json()["metadata"]["generation"] == 1


@pytest.mark.parametrize(("path", "body", "cause"), [
    ("/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
     {"metadata": {"name": "h"}, "spec": {"minReplicas": 5, "maxReplicas": 2, "scaleTargetRef": {
         "apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}},
     {"field": "spec.maxReplicas", "reason": "FieldValueInvalid",
      "message": "Invalid value: 2: must be greater than or equal to `minReplicas`"}),
    ("/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "c"}, "data": {"../etc": "x"}},
     {"field": "data[../etc]", "reason": "FieldValueInvalid",
      "message": 'Invalid value: "../etc": a valid config key must consist of alphanumeric characters, '
                 "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation "
                 "is '[-._a-zA-Z0-9]+')"}),
    ("/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
     {"metadata": {"name": "i"}, "spec": {"rules": [{"host": "a.example", "http": {"paths": [
         {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}},
     {"field": "spec.rules[0].http.paths[0].pathType", "reason": "FieldValueRequired",
      "message": "Required value: pathType must be specified"}),
    ("/api/v1/namespaces/{ns}/services",
     {"metadata": {"name": "s", "labels": {"team": "a b"}}, "spec": {"ports": [{"port": 0}]}},
     {"field": "spec.ports[0].port", "reason": "FieldValueInvalid",
      "message": "Invalid value: 0: must be between 1 and 65535, inclusive"}),
])
def test_semantic_rules_answer_422_with_causes(api, path, body, cause):
    answer = api("POST", path, body)
    assert answer.status_code == 422
    status = answer.json()
    assert status["reason"] == "Invalid"
    assert cause in status["details"]["causes"]
    assert f"{cause['field']}: {cause['message']}" in status["message"]


def test_undecodable_values_are_400_and_never_echo_a_secret(api):
    secret = api("POST", "/api/v1/namespaces/{ns}/secrets",
                 {"metadata": {"name": "s"}, "data": {"password": "hunter2!"}})
    quantity = api("POST", DEPLOYMENTS, deployment() | {"spec": {**deployment()["spec"], "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {"limits": {"cpu": "lots"}}}]}}}})

    assert secret.status_code == 400
    assert secret.json()["message"] == ('Secret in version "v1" cannot be handled as a Secret: '
                                        "illegal base64 data at input byte 7")
    assert "hunter2" not in secret.text
    assert quantity.status_code == 400
    assert "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'" in \
        quantity.json()["message"]


def test_unknown_fields_follow_field_validation(api):
    body = {"metadata": {"name": "c"}, "data": {"a": "1"}, "extra": True}

    strict = api("POST", "/api/v1/namespaces/{ns}/configmaps", body, fieldValidation="Strict")
    warned = api("POST", "/api/v1/namespaces/{ns}/configmaps", body)  # Warn: the server's default

    assert strict.status_code == 400
    assert strict.json()["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: '
                                        'strict decoding error: unknown field "extra"')
    assert warned.status_code == 201
    assert warned.headers["Warning"] == '299 - "unknown field \\"extra\\""'
    assert "extra" not in api("GET", "/api/v1/namespaces/{ns}/configmaps/c").json()


def test_dry_run_create_update_and_delete_store_nothing(api):
    created = api("POST", DEPLOYMENTS, deployment(), dryRun="All")
    assert created.status_code == 201 and created.json()["spec"]["revisionHistoryLimit"] == 10
    assert api("GET", DEPLOYMENTS + "/web").status_code == 404

    api("POST", DEPLOYMENTS, deployment())
    patched = api("PATCH", DEPLOYMENTS + "/web", {"spec": {"replicas": 9}}, SMP, dryRun="All")
    deleted = api("DELETE", DEPLOYMENTS + "/web", dryRun="All")
    stored = api("GET", DEPLOYMENTS + "/web").json()

    assert patched.json()["spec"]["replicas"] == 9
    assert deleted.status_code == 200
    assert stored["spec"]["replicas"] == 1
    assert api("POST", DEPLOYMENTS, deployment(), dryRun="Yes").status_code == 400


def test_update_entries_track_who_changed_which_field(api):
    api("POST", DEPLOYMENTS, deployment(), fieldManager="creator")
    api("PATCH", DEPLOYMENTS + "/web/scale", {"spec": {"replicas": 3}}, "application/merge-patch+json",
        fieldManager="scaler")

    entries = api("GET", DEPLOYMENTS + "/web").json()["metadata"]["managedFields"]
    by_manager = {e["manager"]: e for e in entries}
    assert by_manager["scaler"]["subresource"] == "scale"
    assert by_manager["scaler"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in by_manager["creator"]["fieldsV1"]["f:spec"]
    assert by_manager["creator"]["operation"] == "Update"


def test_openapi_documents(sandbox, api):
    headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
    root = requests.get(f"{sandbox.url}/openapi/v3", headers=headers, timeout=10).json()
    apps = requests.get(sandbox.url + root["paths"]["apis/apps/v1"]["serverRelativeURL"], headers=headers,
                        timeout=10).json()
    patch = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    v2 = requests.get(f"{sandbox.url}/openapi/v2", headers=headers | {"Accept": "application/json"}, timeout=10)
    protobuf_only = requests.get(f"{sandbox.url}/openapi/v2", timeout=10, headers=headers | {
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})

    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    containers = apps["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert v2.json()["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]["type"] == \
        "integer"
    assert protobuf_only.status_code == 406
