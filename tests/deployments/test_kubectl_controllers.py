"""kubectl conformance of the sandbox's controllers: Debian's kubectl, answered as by a real cluster.

Rollouts (status, history, undo, pause/resume, maxSurge/maxUnavailable, the
progress deadline), scale, logs, describe with events, deletion by each
propagation policy, a quota overrun and the HPA. Where a message is checked,
the comment names the real component whose wording it is.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.deployments.test_sandbox import wait_for
from tests.kubectl_fixture import Kubectl

GOOD, NEXT = "registry.example/shop/web:1.0", "registry.example/shop/web:2.0"
BROKEN = "registry.example/shop/web:2.0-broken"


def deployment(replicas: int = 2, image: str = GOOD, strategy: str = "", deadline: int = 600,
               change_cause: str = "") -> str:
    annotations = f"\n  annotations: {{kubernetes.io/change-cause: {change_cause}}}" if change_cause else ""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web{annotations}
spec:
  replicas: {replicas}
  progressDeadlineSeconds: {deadline}
  selector: {{matchLabels: {{app: web}}}}{strategy}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "{image}", resources: {{requests: {{cpu: 100m}}}}}}]
"""


def create(kubectl: Kubectl, manifest: str) -> None:
    # --validate=false: client-side validation needs the OpenAPI document, not this module's subject
    kubectl("create", "--validate=false", "-f", "-", stdin=manifest)


def rolled_out(kubectl: Kubectl, name: str = "web") -> bool:
    done = kubectl("rollout", "status", f"deployment/{name}", "--watch=false", check=False)
    return done.returncode == 0 and "successfully rolled out" in done.stdout


def replica_sets(kubectl: Kubectl) -> dict[str, dict]:
    return {rs["metadata"]["name"]: rs for rs in kubectl.json("get", "replicasets", "-l", "app=web")["items"]}


def pods(kubectl: Kubectl, selector: str = "app=web") -> list[dict]:
    return kubectl.json("get", "pods", "-l", selector)["items"]


def get_when(kubectl: Kubectl, what: str, predicate, timeout: float = 5.0) -> dict:
    """`kubectl get <what> -o json` once `predicate` holds for it."""
    return wait_for(lambda: (obj := kubectl.json("get", what)) and predicate(obj) and obj, timeout)


def condition(obj: dict, kind: str) -> dict:
    return next(c for c in obj["status"].get("conditions") or [] if c["type"] == kind)


def test_rollout_history_and_undo_revive_the_old_replica_set(kubectl: Kubectl) -> None:
    # given a Deployment rolled out twice
    create(kubectl, deployment(change_cause="first"))
    wait_for(lambda: rolled_out(kubectl))
    kubectl("annotate", "deployment/web", "kubernetes.io/change-cause=second", "--overwrite")
    kubectl("set", "image", "deployment/web", f"web={NEXT}")
    wait_for(lambda: rolled_out(kubectl))

    # then each template has a ReplicaSet owned by the Deployment, with its revision and hash
    web = kubectl.json("get", "deployment/web")
    by_revision = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs
                   for rs in replica_sets(kubectl).values()}
    assert set(by_revision) == {"1", "2"}
    assert web["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    for rs in by_revision.values():
        owner = rs["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("Deployment", web["metadata"]["uid"], True)
        pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs["metadata"]["name"] == f"web-{pod_hash}"
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert (by_revision["1"]["spec"]["replicas"], by_revision["2"]["spec"]["replicas"]) == (0, 2)
    assert {p["metadata"]["ownerReferences"][0]["name"] for p in pods(kubectl)} == {
        by_revision["2"]["metadata"]["name"]}

    history = kubectl("rollout", "history", "deployment/web").stdout
    assert re.search(r"^1\s+first$", history, re.M) and re.search(r"^2\s+second$", history, re.M)
    first = kubectl("rollout", "history", "deployment/web", "--revision=1").stdout
    assert re.search(rf"Image:\s+{re.escape(GOOD)}$", first, re.M) and NEXT not in first

    # when undone (kubectl reads the ReplicaSets and JSON-patches the template back)
    assert kubectl("rollout", "undo", "deployment/web").stdout.strip() == "deployment.apps/web rolled back"
    wait_for(lambda: rolled_out(kubectl) and {p["spec"]["containers"][0]["image"] for p in pods(kubectl)} == {GOOD})

    # then revision 1's ReplicaSet is revived as revision 3, as the real controller renumbers it
    revived = replica_sets(kubectl)[by_revision["1"]["metadata"]["name"]]
    assert revived["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert revived["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert revived["spec"]["replicas"] == 2 and len(replica_sets(kubectl)) == 2
    history = kubectl("rollout", "history", "deployment/web").stdout
    assert re.findall(r"^(\d+)\s", history, re.M) == ["2", "3"]


def test_revision_history_limit_prunes_old_replica_sets(kubectl: Kubectl) -> None:
    create(kubectl, deployment(replicas=1))
    kubectl("patch", "deployment/web", "--type=merge", "-p", '{"spec": {"revisionHistoryLimit": 1}}')
    for tag in ("1.1", "1.2", "1.3"):
        kubectl("set", "image", "deployment/web", f"web=registry.example/shop/web:{tag}")
        wait_for(lambda tag=tag: rolled_out(kubectl) and len(replica_sets(kubectl)) == 2)
    revisions = sorted(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                       for rs in replica_sets(kubectl).values())
    assert revisions == ["3", "4"]  # the newest plus one old ReplicaSet, revisions never reused


def test_paused_deployment_starts_no_rollout_until_resumed(kubectl: Kubectl) -> None:
    create(kubectl, deployment())
    wait_for(lambda: rolled_out(kubectl))
    assert kubectl("rollout", "pause", "deployment/web").stdout.strip() == "deployment.apps/web paused"
    kubectl("set", "image", "deployment/web", f"web={NEXT}")

    # kube-controller-manager: Progressing=Unknown, reason DeploymentPaused, "Deployment is paused"
    paused = get_when(kubectl, "deployment/web", lambda d: condition(d, "Progressing")["reason"] == "DeploymentPaused")
    assert (condition(paused, "Progressing")["status"], condition(paused, "Progressing")["message"]) == (
        "Unknown", "Deployment is paused")
    assert len(replica_sets(kubectl)) == 1
    assert {p["spec"]["containers"][0]["image"] for p in pods(kubectl)} == {GOOD}

    kubectl("rollout", "resume", "deployment/web")
    wait_for(lambda: rolled_out(kubectl) and {p["spec"]["containers"][0]["image"] for p in pods(kubectl)} == {NEXT})
    assert len(replica_sets(kubectl)) == 2


@pytest.mark.parametrize(("surge", "unavailable", "pods_total", "old_ready"), [(1, 0, 5, 4), (0, 1, 4, 3)])
def test_surge_and_unavailability_bound_a_stalled_rollout_until_its_deadline(
        kubectl: Kubectl, surge: int, unavailable: int, pods_total: int, old_ready: int) -> None:
    strategy = f"\n  strategy: {{rollingUpdate: {{maxSurge: {surge}, maxUnavailable: {unavailable}}}}}"
    create(kubectl, deployment(replicas=4, strategy=strategy, deadline=3))
    wait_for(lambda: rolled_out(kubectl))

    # when the new image never becomes ready
    kubectl("set", "image", "deployment/web", f"web={BROKEN}")

    # then the rollout stops at the bounds, and fails once the deadline passes without progress
    # (kube-controller-manager: Progressing=False ProgressDeadlineExceeded 'ReplicaSet "x" has timed out progressing.')
    failed = get_when(kubectl, "deployment/web",
                      lambda d: condition(d, "Progressing")["reason"] == "ProgressDeadlineExceeded")
    new_name = next(name for name, rs in replica_sets(kubectl).items()
                    if rs["spec"]["template"]["spec"]["containers"][0]["image"] == BROKEN)
    assert condition(failed, "Progressing")["message"] == f'ReplicaSet "{new_name}" has timed out progressing.'
    assert condition(failed, "Progressing")["status"] == "False"
    everything = pods(kubectl)
    old = [p for p in everything if p["spec"]["containers"][0]["image"] == GOOD]
    assert len(everything) == pods_total and len(old) == old_ready
    assert failed["status"]["availableReplicas"] == old_ready
    broken = next(p for p in everything if p["spec"]["containers"][0]["image"] == BROKEN)["metadata"]
    assert re.search(r"Warning\s+BackOff\s+.*kubelet\s+Back-off restarting failed container web in pod "
                     rf"{broken['name']}_default\({broken['uid']}\)", kubectl("describe", f"pod/{broken['name']}").stdout)
    # kubectl rollout status: 'error: deployment "web" exceeded its progress deadline'
    verdict = kubectl("rollout", "status", "deployment/web", "--watch=false", check=False)
    assert verdict.returncode == 1 and 'deployment "web" exceeded its progress deadline' in verdict.stderr


def test_scale_logs_and_describe_show_the_controllers_work(kubectl: Kubectl) -> None:
    create(kubectl, deployment(replicas=1))
    wait_for(lambda: rolled_out(kubectl))
    assert kubectl("scale", "deployment/web", "--replicas=3").stdout.strip() == "deployment.apps/web scaled"
    wait_for(lambda: rolled_out(kubectl) and len(pods(kubectl)) == 3)

    log = kubectl("logs", "deployment/web").stdout
    assert f"starting web (image {GOOD})" in log

    (name,) = replica_sets(kubectl)
    described = kubectl("describe", "deployment/web").stdout
    assert f"NewReplicaSet:   {name} (3/3 replicas created)" in described
    # kube-controller-manager's wording: "Scaled up replica set web-<hash> to 3 from 1"
    assert re.search(rf"Normal\s+ScalingReplicaSet\s+.*deployment-controller\s+Scaled up replica set {name} "
                     r"to 1 from 0", described)
    assert re.search(rf"Scaled up replica set {name} to 3 from 1", described)
    described_rs = kubectl("describe", f"replicaset/{name}").stdout
    assert re.search(rf"Normal\s+SuccessfulCreate\s+.*replicaset-controller\s+Created pod: {name}-\w{{5}}",
                     described_rs)

    pod = pods(kubectl)[0]["metadata"]["name"]
    described_pod = kubectl("describe", f"pod/{pod}").stdout
    for reason, source, message in (("Scheduled", "default-scheduler", f"Successfully assigned default/{pod} to "),
                                    ("Pulled", "kubelet", f'Container image "{GOOD}" already present on machine'),
                                    ("Created", "kubelet", "Created container web"),
                                    ("Started", "kubelet", "Started container web")):
        assert re.search(rf"Normal\s+{reason}\s+.*{source}\s+{re.escape(message)}", described_pod), reason

    # the same events in events.k8s.io/v1 shape
    events = kubectl.json("get", "events.v1.events.k8s.io", "--field-selector", "reason=ScalingReplicaSet")["items"]
    assert {e["regarding"]["name"] for e in events} == {"web"}
    assert {e["reportingController"] for e in events} == {"deployment-controller"}


def test_json_patches_reach_the_object_and_its_scale(kubectl: Kubectl) -> None:
    create(kubectl, deployment(replicas=1))
    kubectl("patch", "deployment/web", "--type=json", "-p",
            '[{"op": "add", "path": "/metadata/labels", "value": {"tier": "web"}}]')
    kubectl("patch", "deployment/web", "--subresource=scale", "--type=json", "-p",
            '[{"op": "replace", "path": "/spec/replicas", "value": 2}]')
    web = kubectl.json("get", "deployment/web")
    assert (web["metadata"]["labels"], web["spec"]["replicas"]) == ({"tier": "web"}, 2)
    wait_for(lambda: len(pods(kubectl)) == 2)
    # an operation that does not apply is refused (422, as kubectl prints it), and nothing changes
    before = kubectl.json("get", "deployment/web")["spec"]
    refused = kubectl("patch", "deployment/web", "--type=json", "-p",
                      '[{"op": "replace", "path": "/spec/replicas", "value": 5}, {"op": "remove", "path": "/spec/nothing"}]',
                      check=False)
    assert refused.returncode == 1
    assert refused.stderr.startswith("The request is invalid: the server rejected our request due to an error in our "
                                     "request")
    assert kubectl.json("get", "deployment/web")["spec"] == before


@pytest.mark.parametrize("cascade", ["orphan", "background"])
def test_delete_with_cascade_leaves_what_the_policy_says(kubectl: Kubectl, cascade: str) -> None:
    create(kubectl, deployment())
    wait_for(lambda: rolled_out(kubectl))
    (rs_name,) = replica_sets(kubectl)

    assert kubectl("delete", "deployment/web", f"--cascade={cascade}").stdout.strip() == (
        'deployment.apps "web" deleted')

    if cascade == "orphan":  # the ReplicaSet and its pods stay, no longer owned
        rs = kubectl.json("get", f"replicaset/{rs_name}")
        assert "ownerReferences" not in rs["metadata"]
        assert len(pods(kubectl)) == 2
    else:
        wait_for(lambda: not replica_sets(kubectl) and not pods(kubectl))


def test_foreground_delete_waits_for_dependents(kubectl: Kubectl) -> None:
    # given a pod that a finalizer holds
    create(kubectl, deployment(replicas=1))
    wait_for(lambda: rolled_out(kubectl))
    (pod,) = pods(kubectl)
    pod_name = pod["metadata"]["name"]
    kubectl("patch", f"pod/{pod_name}", "--type=merge", "-p", '{"metadata": {"finalizers": ["example.com/hold"]}}')

    # when the Deployment is deleted in the foreground
    kubectl("delete", "deployment/web", "--cascade=foreground", "--wait=false")

    # then it and its ReplicaSet stay, marked, until the pod is gone
    def marked() -> dict | None:
        web = kubectl.json("get", "deployment/web")
        rs = next(iter(replica_sets(kubectl).values()))
        held = kubectl.json("get", f"pod/{pod_name}")
        return web if rs["metadata"].get("deletionTimestamp") and held["metadata"].get("deletionTimestamp") else None
    web = wait_for(marked)
    assert web["metadata"]["finalizers"] == ["foregroundDeletion"] and web["metadata"]["deletionTimestamp"]

    kubectl("patch", f"pod/{pod_name}", "--type=merge", "-p", '{"metadata": {"finalizers": null}}')
    wait_for(lambda: kubectl("get", "deployment/web", check=False).returncode == 1 and not replica_sets(kubectl))
    assert not pods(kubectl)


def test_an_invalid_propagation_policy_is_refused(kubectl: Kubectl) -> None:
    create(kubectl, deployment(replicas=1))
    done = kubectl("delete", "--raw", "/apis/apps/v1/namespaces/default/deployments/web?propagationPolicy=Sideways",
                   check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == ('The DeleteOptions "" is invalid: propagationPolicy: Unsupported value: "Sideways": '
                                   'supported values: "Foreground", "Background", "Orphan"')
    assert kubectl("get", "deployment/web", check=False).returncode == 0


def test_quota_overrun_fails_pod_creation_with_the_admission_message(kubectl: Kubectl) -> None:
    kubectl("create", "quota", "q", "--hard=pods=2,requests.cpu=1")
    create(kubectl, deployment(replicas=3))

    def failing() -> dict | None:
        rs = next(iter(replica_sets(kubectl).values()), None)
        return rs if rs and any(c["type"] == "ReplicaFailure" for c in rs["status"].get("conditions") or []) else None
    rs = wait_for(failing)
    failure = condition(rs, "ReplicaFailure")
    # the quota admission plugin's wording
    pattern = (r'pods "web-\w+-\w{5}" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, '
               r"limited: pods=2")
    assert (failure["status"], failure["reason"]) == ("True", "FailedCreate")
    assert re.fullmatch(pattern, failure["message"])
    assert len(pods(kubectl)) == 2
    quota = get_when(kubectl, "quota/q", lambda q: q["status"].get("used"))
    assert quota["status"]["hard"] == {"pods": "2", "requests.cpu": "1"}
    assert quota["status"]["used"] == {"pods": "2", "requests.cpu": "200m"}
    warnings = kubectl.json("get", "events", "--field-selector", "reason=FailedCreate")["items"]
    assert warnings and warnings[0]["type"] == "Warning"
    assert re.fullmatch(f"Error creating: {pattern}", warnings[0]["message"])

    # a pod created directly is refused with 403 Forbidden, the same wording
    overrides = {"spec": {"containers": [{"name": "extra", "image": GOOD, "resources": {"requests": {"cpu": "100m"}}}]}}
    refused = kubectl("run", "extra", f"--image={GOOD}", "--overrides", json.dumps(overrides), check=False)
    assert refused.returncode == 1
    assert ('Error from server (Forbidden): pods "extra" is forbidden: exceeded quota: q, requested: pods=1, '
            "used: pods=2, limited: pods=2") in refused.stderr

    # raising the quota lets the ReplicaSet finish, and the failure condition goes
    kubectl("patch", "quota/q", "--type=merge", "-p", '{"spec": {"hard": {"pods": "5"}}}')
    wait_for(lambda: len(pods(kubectl)) == 3 and not next(iter(replica_sets(kubectl).values()))["status"].get(
        "conditions"), timeout=10)


HPA = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 4
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}]
"""


def test_hpa_scales_on_the_simulated_cpu_utilisation(kubectl: Kubectl) -> None:
    create(kubectl, deployment(replicas=1))
    create(kubectl, HPA)

    # without metrics: the HPA controller's FailedGetResourceMetric, and no scaling
    idle = get_when(kubectl, "hpa/web", lambda h: h["status"].get("conditions"))
    assert condition(idle, "ScalingActive")["reason"] == "FailedGetResourceMetric"
    assert condition(idle, "ScalingActive")["status"] == "False"

    # when the pods use twice their target: 1 → 2 → 4, then the maximum limits it
    kubectl("annotate", "deployment/web", "sandbox.slipway.dev/cpu-utilization=100")
    hpa = get_when(kubectl, "hpa/web", lambda h: h["status"].get("currentReplicas") == 4, timeout=10)
    status = hpa["status"]
    assert status["desiredReplicas"] == 4 and status["lastScaleTime"]
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": 100}}}]
    assert [c["type"] for c in status["conditions"]] == ["AbleToScale", "ScalingActive", "ScalingLimited"]
    assert (condition(hpa, "ScalingActive")["status"], condition(hpa, "ScalingActive")["reason"]) == (
        "True", "ValidMetricFound")
    assert (condition(hpa, "ScalingLimited")["status"], condition(hpa, "ScalingLimited")["reason"]) == (
        "True", "TooManyReplicas")
    assert kubectl.json("get", "deployment/web")["spec"]["replicas"] == 4
    # kubectl get hpa's table, as the real server's columns render it
    assert kubectl("get", "hpa/web", "--no-headers").stdout.split()[:7] == [
        "web", "Deployment/web", "cpu:", "100%/50%", "1", "4", "4"]
    # desired, current, ready
    wait_for(lambda: kubectl("get", "replicasets", "--no-headers").stdout.split()[1:4] == ["4", "4", "4"])
    # the HPA controller's event wording
    described = kubectl("describe", "hpa/web").stdout
    assert re.search(r"Normal\s+SuccessfulRescale\s+.*horizontal-pod-autoscaler\s+New size: 2; reason: cpu "
                     r"resource utilization \(percentage of request\) above target", described)
