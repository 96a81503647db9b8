"""kubectl conformance for writes: apply (client- and server-side), field managers, patches, dry-run, admission.

Debian's kubectl drives the sandbox; every assertion is what a real API server
answers (its wording is quoted where a message is checked). The last tests are
Slipway's own: its server-side apply (field manager `slipway`) keeps what a
second writer changed in fields Slipway does not render.
"""

import json

import pytest
import yaml

from deployments.kube import ClusterAccess, KubeClient
from deployments.manifests import render
from tests.deployments.test_manifests import CONFIG, DIGEST_IMAGE, make_app, spec_for


def deployment(name: str = "web", *, replicas: int | None = 2, labels: dict | None = None,
               containers: list | None = None, **spec_extra) -> dict:
    spec = {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": containers or [{"name": "web", "image": "nginx:1.27",
                                                                "ports": [{"containerPort": 80}]}]}},
            **spec_extra}
    if replicas is not None:
        spec["replicas"] = replicas
    metadata = {"name": name, **({"labels": labels} if labels else {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def apply(kubectl, obj: dict, *args: str, check: bool = True):
    return kubectl("apply", "-f", "-", *args, stdin=yaml.safe_dump(obj), check=check)


def managers(kubectl, name: str = "web") -> dict[str, dict]:
    """`manager/operation` → fieldsV1 of the deployment's managedFields."""
    live = kubectl.json("get", "deployment", name, "--show-managed-fields")
    return {f"{e['manager']}/{e['operation']}": e["fieldsV1"] for e in live["metadata"]["managedFields"]}


def test_kubectl_validates_with_the_served_openapi_and_explains_fields(kubectl):
    # given the default --validate (kubectl reads /openapi/v3 and leaves strict checks to the server)
    created = apply(kubectl, deployment())
    assert created.stdout.strip() == "deployment.apps/web created"

    explained = kubectl("explain", "deployments.spec.replicas").stdout
    assert "FIELD: replicas <integer>" in explained
    assert "Number of desired pods" in explained


def test_client_side_apply_twice_then_changed(kubectl):
    apply(kubectl, deployment())
    again = apply(kubectl, deployment())
    changed = apply(kubectl, deployment(replicas=3))

    assert again.stdout.strip() == "deployment.apps/web unchanged"
    assert changed.stdout.strip() == "deployment.apps/web configured"
    live = kubectl.json("get", "deployment", "web")
    assert live["spec"]["replicas"] == 3
    assert live["metadata"]["generation"] == 2
    assert "f:replicas" in managers(kubectl)["kubectl-client-side-apply/Update"]["f:spec"]


def test_server_side_apply_twice_then_changed_records_field_level_ownership(kubectl):
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}
    apply(kubectl, config_map, "--server-side")
    version = kubectl.json("get", "configmap", "settings")["metadata"]["resourceVersion"]
    apply(kubectl, config_map, "--server-side")
    assert kubectl.json("get", "configmap", "settings")["metadata"]["resourceVersion"] == version  # no-op: no write

    first = apply(kubectl, deployment(), "--server-side")
    apply(kubectl, deployment(), "--server-side")
    assert kubectl.json("get", "deployment", "web")["metadata"]["generation"] == 1
    apply(kubectl, deployment(replicas=4), "--server-side")

    assert first.stdout.strip() == "deployment.apps/web serverside-applied"
    assert kubectl.json("get", "deployment", "web")["spec"]["replicas"] == 4
    fields = managers(kubectl)["kubectl/Apply"]
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    assert container["."] == {} and "f:image" in container
    assert 'k:{"containerPort":80,"protocol":"TCP"}' in container["f:ports"]
    assert "f:progressDeadlineSeconds" not in fields["f:spec"]  # defaulted by the server, applied by nobody


def test_two_field_managers_conflict_until_forced(kubectl):
    # given a replica count set by client-side apply
    apply(kubectl, deployment(replicas=2))

    # when another manager applies a different count
    refused = apply(kubectl, deployment(replicas=5), "--server-side", "--field-manager=ops", check=False)

    # then the real server's wording: the manager, its operation's API version, the field
    assert refused.returncode != 0
    assert ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
            in refused.stderr)
    assert kubectl.json("get", "deployment", "web")["spec"]["replicas"] == 2

    forced = apply(kubectl, deployment(replicas=5), "--server-side", "--field-manager=ops", "--force-conflicts")
    assert forced.returncode == 0
    assert kubectl.json("get", "deployment", "web")["spec"]["replicas"] == 5
    owners = managers(kubectl)
    assert "f:replicas" in owners["ops/Apply"]["f:spec"]
    # (kubectl also moves what client-side apply owned to the new manager, as it does with a real server)
    assert "f:replicas" not in owners.get("kubectl-client-side-apply/Update", {}).get("f:spec", {})


def test_the_conflict_status_names_manager_and_field_in_its_causes(kubectl, tmp_path):
    import requests

    apply(kubectl, deployment(replicas=2))
    ca = tmp_path / "ca.pem"
    ca.write_text(kubectl.sandbox.ca_pem)
    url = f"{kubectl.sandbox.url}/apis/apps/v1/namespaces/default/deployments/web"
    answer = requests.patch(url, params={"fieldManager": "ops"}, data=json.dumps(deployment(replicas=7)), verify=ca,
                            headers={"Content-Type": "application/apply-patch+yaml",
                                     "Authorization": f"Bearer {kubectl.sandbox.token}"}, timeout=10)

    assert answer.status_code == 409
    status = answer.json()
    assert status["reason"] == "Conflict"
    assert status["details"]["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                            "message": 'conflict with "kubectl-client-side-apply" using apps/v1'}]


def test_a_field_stops_being_applied_is_removed_only_when_nobody_else_owns_it(kubectl):
    # given two managers: "ci" applies labels a and shared, "ops" applies shared too
    apply(kubectl, deployment(labels={"a": "1", "shared": "yes"}), "--server-side", "--field-manager=ci")
    apply(kubectl, deployment(labels={"shared": "yes"}), "--server-side", "--field-manager=ops")

    # when ci applies neither
    apply(kubectl, deployment(), "--server-side", "--field-manager=ci")

    # then a (ci's alone) is gone, shared (ops' too) stays
    assert kubectl.json("get", "deployment", "web")["metadata"]["labels"] == {"shared": "yes"}


def test_lists_merge_by_their_keys_across_managers(kubectl):
    web = {"name": "web", "image": "nginx:1.27", "env": [{"name": "A", "value": "1"}]}
    sidecar = {"name": "log", "image": "busybox:1.36"}
    apply(kubectl, deployment(containers=[web]), "--server-side", "--field-manager=ci")
    apply(kubectl, deployment(containers=[{"name": "web", "image": "nginx:1.27", "env": [{"name": "B", "value": "2"}]},
                                          sidecar]), "--server-side", "--field-manager=ops")

    containers = kubectl.json("get", "deployment", "web")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web", "log"]
    assert [e["name"] for e in containers[0]["env"]] == ["A", "B"]


def test_patches_merge_strategic_and_json(kubectl):
    apply(kubectl, deployment())

    # strategic merge: containers merge by name, `$patch: delete` removes one
    kubectl("patch", "deployment", "web", "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": "log", "image": "busybox:1.36"}]}}}}))
    names = [c["name"] for c in kubectl.json("get", "deployment", "web")["spec"]["template"]["spec"]["containers"]]
    assert names == ["web", "log"]
    kubectl("patch", "deployment", "web", "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": "log", "$patch": "delete"}]}}}}))

    # JSON merge patch: a list is replaced wholesale
    kubectl("patch", "deployment", "web", "--type=merge", "-p", json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}}}))
    container = kubectl.json("get", "deployment", "web")["spec"]["template"]["spec"]["containers"]
    assert container == [{"name": "web", "image": "nginx:1.28"}]

    # JSON patch, including a failing `test`
    kubectl("patch", "deployment", "web", "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/replicas", "value": 4}]))
    failed = kubectl("patch", "deployment", "web", "--type=json", "-p", json.dumps(
        [{"op": "test", "path": "/spec/replicas", "value": 9}]), check=False)
    live = kubectl.json("get", "deployment", "web")
    assert live["spec"]["replicas"] == 4
    assert failed.returncode != 0 and "the server rejected our request due to an error in our request" in failed.stderr
    assert "$patch" not in json.dumps(live)


def test_dry_runs_and_diff_change_nothing(kubectl):
    # server-side dry-run of a create answers the object and stores nothing
    answered = json.loads(apply(kubectl, deployment(), "--dry-run=server", "-o", "json").stdout)
    assert answered["spec"]["progressDeadlineSeconds"] == 600  # defaulted, as if created
    missing = kubectl("get", "deployment", "web", check=False)
    assert 'deployments.apps "web" not found' in missing.stderr

    apply(kubectl, deployment())
    client = apply(kubectl, deployment(replicas=8), "--dry-run=client")
    server = apply(kubectl, deployment(replicas=8), "--dry-run=server")
    assert client.stdout.strip() == "deployment.apps/web configured (dry run)"
    assert server.stdout.strip() == "deployment.apps/web configured (server dry run)"

    same = kubectl("diff", "-f", "-", stdin=yaml.safe_dump(deployment()), check=False)
    different = kubectl("diff", "-f", "-", stdin=yaml.safe_dump(deployment(replicas=8)), check=False)
    assert same.returncode == 0 and same.stdout == ""
    assert different.returncode == 1
    assert "-  replicas: 2" in different.stdout and "+  replicas: 8" in different.stdout

    deleted = kubectl("delete", "deployment", "web", "--dry-run=server")
    assert deleted.stdout.strip() == 'deployment.apps "web" deleted (server dry run)'
    assert kubectl.json("get", "deployment", "web")["spec"]["replicas"] == 2


@pytest.mark.parametrize(("change", "answer"), [
    # k8s.io/apimachinery validation.IsValidPortNum
    ({"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 70000}]}]},
     'The Deployment "web" is invalid: spec.template.spec.containers[0].ports[0].containerPort: '
     "Invalid value: 70000: must be between 1 and 65535, inclusive"),
    # apis/core/validation: ValidateResourceRequirements
    ({"containers": [{"name": "web", "image": "nginx", "resources": {"requests": {"cpu": "2"},
                                                                     "limits": {"cpu": "1"}}}]},
     'The Deployment "web" is invalid: spec.template.spec.containers[0].resources.requests: '
     'Invalid value: "2": must be less than or equal to cpu limit of 1'),
    # the schema's required fields (name of a container)
    ({"containers": [{"image": "nginx"}]},
     'The Deployment "web" is invalid: spec.template.spec.containers[0].name: Required value'),
])
def test_an_invalid_object_is_refused_with_422(kubectl, change, answer):
    refused = apply(kubectl, deployment(containers=change["containers"]), check=False)
    assert refused.returncode != 0
    assert answer in refused.stderr
    assert "not found" in kubectl("get", "deployment", "web", check=False).stderr


def test_unknown_fields_and_wrong_types_are_refused_as_by_the_decoder(kubectl):
    unknown = deployment()
    unknown["spec"]["replicaCount"] = 2
    wrong_type = deployment()
    wrong_type["spec"]["replicas"] = "two"

    strict = apply(kubectl, unknown, check=False)  # kubectl sends fieldValidation=Strict
    typed = apply(kubectl, wrong_type, check=False)
    applied = apply(kubectl, unknown, "--server-side", check=False)

    assert ('Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
            'unknown field "spec.replicaCount"') in strict.stderr
    assert ('Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into '
            "Go struct field DeploymentSpec.spec.replicas of type int32") in typed.stderr
    assert ".spec.replicaCount: field not declared in schema" in applied.stderr


# Slipway on top: its server-side apply and a second writer


@pytest.fixture
def slipway(kubectl) -> KubeClient:
    """Slipway's cluster adapter on the kubectl module's sandbox (HTTPS under its CA, its token)."""
    sandbox = kubectl.sandbox
    return KubeClient(ClusterAccess(name="sandbox", api_server=sandbox.url, token=sandbox.token,
                                    ca_certificate=sandbox.ca_pem))


def rendered(**fields) -> list[dict]:
    app = make_app(**fields)
    return render(spec=spec_for(app), image=DIGEST_IMAGE, config=CONFIG, release="42")


def test_a_second_writers_changes_survive_a_slipway_reapply(kubectl, slipway):
    # given an autoscaled application deployed by Slipway (its Deployment leaves replicas to the HPA)
    objects = rendered(autoscaling=True)
    for obj in objects:
        slipway.apply(obj)
    namespace = objects[0]["metadata"]["name"]
    before = kubectl.json("-n", namespace, "get", "deployment", "api")

    # when an operator scales it and labels it by hand, and Slipway re-applies the same release
    kubectl("-n", namespace, "scale", "deployment", "api", "--replicas=4")
    kubectl("-n", namespace, "label", "deployment", "api", "team=payments")
    for obj in objects:
        slipway.apply(obj)

    # then both changes are still there, and the pod template did not change: nothing restarts
    after = kubectl.json("-n", namespace, "get", "deployment", "api")
    assert after["spec"]["replicas"] == 4
    assert after["metadata"]["labels"]["team"] == "payments"
    assert after["spec"]["template"] == before["spec"]["template"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1  # the scale, nothing else


def test_slipway_forces_back_the_fields_it_renders(kubectl, slipway):
    # given a fixed-size application: replicas are Slipway's, from the approved release
    objects = rendered(replicas=2)
    for obj in objects:
        slipway.apply(obj)
    namespace = objects[0]["metadata"]["name"]
    kubectl("-n", namespace, "scale", "deployment", "api", "--replicas=5")

    # when Slipway re-applies (with force: the release is the source of truth for what it renders)
    for obj in objects:
        slipway.apply(obj)

    # then the approved count is back and Slipway owns it again
    live = kubectl.json("-n", namespace, "get", "deployment", "api", "--show-managed-fields")
    assert live["spec"]["replicas"] == 2
    slipway_fields = next(e["fieldsV1"] for e in live["metadata"]["managedFields"] if e["manager"] == "slipway")
    assert "f:replicas" in slipway_fields["f:spec"]


def test_an_application_becoming_autoscaled_keeps_its_pods(kubectl, slipway):
    # given a fixed-size application running 3 replicas, the count Slipway's own
    for obj in rendered(replicas=3):
        slipway.apply(obj)
    namespace = rendered()[0]["metadata"]["name"]

    # when it is made autoscaled: the Deployment no longer names replicas
    for obj in rendered(replicas=3, autoscaling=True):
        slipway.apply(obj)

    # then the count is not dropped to the server's default of 1 (what removing an owned field does)
    live = kubectl.json("-n", namespace, "get", "deployment", "api", "--show-managed-fields")
    assert live["spec"]["replicas"] == 3
    owners = [e["manager"] for e in live["metadata"]["managedFields"] if "f:replicas" in e["fieldsV1"]["f:spec"]]
    assert owners == ["slipway-replicas-handover"]

    # and an operator's (or the HPA's) later scale simply takes it over
    kubectl("-n", namespace, "scale", "deployment", "api", "--replicas=5")
    for obj in rendered(replicas=3, autoscaling=True):
        slipway.apply(obj)
    assert kubectl.json("-n", namespace, "get", "deployment", "api")["spec"]["replicas"] == 5
