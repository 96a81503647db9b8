"""The sandbox controllers' rules, without a server: rollout arithmetic, quota, template identity, deletion.

What kubectl can observe is in `test_kubectl_controllers.py`; these pin the
edge cases that would take a long rollout to reach over HTTP.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from deployments.sandbox import SandboxCluster, quota
from deployments.sandbox import pods as p
from deployments.sandbox import resources as r
from deployments.sandbox.deployment_controller import fenceposts
from deployments.sandbox.errors import ApiError
from deployments.sandbox.pods import is_ready
from deployments.sandbox.store import Store
from tests.deployments.test_sandbox import wait_for


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "expected"), [
    (4, "25%", "25%", (1, 1)),
    (2, "25%", "25%", (1, 0)),  # surge rounds up, unavailability down
    (10, "33%", "33%", (4, 3)),
    (3, 0, 0, (0, 1)),  # both zero would never progress: the controller allows one unavailable
    (3, 2, 1, (2, 1)),
])
def test_max_surge_rounds_up_and_max_unavailable_down(replicas, surge, unavailable, expected) -> None:
    spec = {"replicas": replicas, "strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}
    assert fenceposts(spec) == expected


def test_a_template_re_encoded_by_a_go_client_is_the_same_template() -> None:
    # kubectl rollout undo sends the ReplicaSet's template back as Go encodes it
    applied = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "a:1"}]}}
    re_encoded = {"metadata": {"creationTimestamp": None, "labels": {"app": "web", "pod-template-hash": "x"}},
                  "spec": {"containers": [{"name": "web", "image": "a:1", "resources": {}}]}}
    assert p.template_without_hash(re_encoded) == p.template_without_hash(applied)
    assert p.template_hash(re_encoded) == p.template_hash(applied)
    changed = {**applied, "spec": {"containers": [{"name": "web", "image": "a:2"}]}}
    assert p.template_hash(changed) != p.template_hash(applied)


@pytest.mark.parametrize(("name", "value", "shown"), [
    ("requests.cpu", Decimal("0.25"), "250m"), ("limits.cpu", Decimal(2), "2"),
    ("requests.memory", Decimal(256 * 2**20), "256Mi"), ("memory", Decimal(1000), "1000"), ("pods", Decimal(3), "3"),
])
def test_quantities_are_shown_as_the_api_server_prints_them(name, value, shown) -> None:
    assert quota.format_quantity(name, value) == shown


def pod(name: str, cpu: str | None = "100m") -> dict:
    resources = {"requests": {"cpu": cpu}} if cpu else {}
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i", "resources": resources}]}}


@pytest.fixture
def store() -> Store:
    store = Store()
    store.create(r.RESOURCEQUOTAS, "default", {"metadata": {"name": "q"},
                                               "spec": {"hard": {"pods": "2", "requests.cpu": "1"}}})
    return store


def test_quota_admission_names_what_is_exceeded_and_counts_finished_pods_free(store: Store) -> None:
    store.create(r.PODS, "default", pod("a"))
    store.create(r.PODS, "default", pod("b"))
    with pytest.raises(ApiError) as refused:
        store.create(r.PODS, "default", pod("c"))
    # only the exceeded resources are listed, as the quota admission plugin does
    assert (refused.value.code, refused.value.message) == (403, 'pods "c" is forbidden: exceeded quota: q, '
                                                           "requested: pods=1, used: pods=2, limited: pods=2")
    done = store.get(r.PODS, "default", "a")
    store.update(r.PODS, "default", "a", lambda current: {**done, "status": {"phase": "Succeeded"}}, status_only=True)
    with pytest.raises(ApiError) as refused:
        store.create(r.PODS, "default", pod("c", cpu="950m"))
    assert refused.value.message.endswith("requested: requests.cpu=950m, used: requests.cpu=100m, "
                                          "limited: requests.cpu=1")
    with pytest.raises(ApiError) as refused:
        store.create(r.PODS, "default", pod("d", cpu=None))
    assert refused.value.message == 'pods "d" is forbidden: failed quota: q: must specify requests.cpu'
    store.create(r.PODS, "default", pod("e"))  # the finished pod no longer counts


def owned(name: str, owner: dict, blocking: bool = True) -> dict:
    reference = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
                 "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": blocking}
    return {**pod(name), "metadata": {"name": name, "ownerReferences": [reference]}}


def test_foreground_deletion_removes_dependents_first_and_finalizers_hold_objects() -> None:
    store = Store()
    owner = store.create(r.CONFIGMAPS, "default", {"metadata": {"name": "owner"}})
    held = owned("held", owner)
    held["metadata"]["finalizers"] = ["example.com/hold"]
    store.create(r.PODS, "default", held)
    store.create(r.PODS, "default", owned("free", owner))

    marked = store.delete(r.CONFIGMAPS, "default", "owner", "Foreground")
    assert marked["metadata"]["finalizers"] == ["foregroundDeletion"] and marked["metadata"]["deletionTimestamp"]
    store.collect_garbage()
    names = [obj["metadata"]["name"] for obj in store.list(r.PODS, "default")[0]]
    assert names == ["held"]  # the free dependent is gone, the held one marked
    assert store.get(r.PODS, "default", "held")["metadata"]["deletionTimestamp"]
    store.collect_garbage()
    assert store.get(r.CONFIGMAPS, "default", "owner")  # still waits for its dependent

    store.update(r.PODS, "default", "held", lambda current: {
        **current, "metadata": {**current["metadata"], "finalizers": []}})
    store.collect_garbage()
    with pytest.raises(ApiError):
        store.get(r.CONFIGMAPS, "default", "owner")
    assert store.list(r.PODS, "default")[0] == []


def test_orphaning_strips_the_owner_reference_and_keeps_the_dependent() -> None:
    store = Store()
    owner = store.create(r.CONFIGMAPS, "default", {"metadata": {"name": "owner"}})
    store.create(r.PODS, "default", owned("child", owner))
    store.delete(r.CONFIGMAPS, "default", "owner", "Orphan")
    assert "ownerReferences" not in store.get(r.PODS, "default", "child")["metadata"]
    store.delete(r.PODS, "default", "child")  # Background: nothing owned, simply gone
    assert store.list(r.PODS, "default")[0] == []


@pytest.mark.parametrize(("surge", "unavailable"), [(1, 1), (2, 0), ("50%", "25%")])
def test_a_healthy_rollout_never_leaves_its_bounds(surge, unavailable) -> None:
    # given a Deployment of 4 rolled out, then a new template
    desired = 4
    extra, missing = fenceposts({"replicas": desired, "strategy": {"rollingUpdate": {
        "maxSurge": surge, "maxUnavailable": unavailable}}})
    highest, lowest = desired + extra, desired - missing

    def deployment(image: str) -> dict:
        return {"metadata": {"name": "web"}, "spec": {
            "replicas": desired, "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": image}]}}}}

    def images() -> tuple[list[dict], dict]:
        pods, _ = cluster.store.list(r.PODS, "default")
        return pods, {pod["spec"]["containers"][0]["image"] for pod in pods}

    with SandboxCluster(port=0, rollout_delay=0.05) as cluster:
        cluster.store.create(r.DEPLOYMENTS, "default", deployment("app:1"))
        wait_for(lambda: len([p for p in images()[0] if is_ready(p)]) == desired)
        cluster.store.update(r.DEPLOYMENTS, "default", "web", lambda current: {**current, **{
            "spec": deployment("app:2")["spec"]}})

        # then, sampled throughout: never more than replicas + maxSurge pods, never fewer ready than replicas - maxUnavailable
        samples = []
        while True:
            pods, seen = images()
            samples.append((len(pods), sum(is_ready(pod) for pod in pods)))
            if seen == {"app:2"} and len(pods) == desired and all(is_ready(pod) for pod in pods):
                break
            assert len(samples) < 5000, "the rollout did not finish"
            time.sleep(0.002)
    assert max(total for total, _ in samples) <= highest
    assert min(ready for _, ready in samples) >= lowest
    assert any(total == highest for total, _ in samples) or highest == desired  # the surge was used


def test_one_object_the_controllers_cannot_handle_does_not_stop_the_others() -> None:
    def deployment(name: str, surge: str) -> dict:
        return {"metadata": {"name": name}, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": name}},
            "strategy": {"rollingUpdate": {"maxSurge": surge, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "w", "image": "i"}]}}}}

    with SandboxCluster(port=0, rollout_delay=0.05) as cluster:
        cluster.store.create(r.DEPLOYMENTS, "default", deployment("a-bad", "a lot"))
        cluster.store.create(r.DEPLOYMENTS, "default", deployment("b-good", "1"))
        wait_for(lambda: cluster.store.get(r.DEPLOYMENTS, "default", "b-good")["status"].get("availableReplicas"))
