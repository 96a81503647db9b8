"""The simulated ReplicaSet controller: keeps `spec.replicas` pods of each ReplicaSet, and reports them.

Orphaned pods its selector matches are adopted. Pods are created from the template (owned by the ReplicaSet, `SuccessfulCreate`
events) and removed unready-first, newest-first (`SuccessfulDelete`). A create
the API refuses — a ResourceQuota, typically — records a `FailedCreate` warning
and sets the `ReplicaFailure` condition with the API's message, and the
controller backs off before trying again, doubling the wait each time (up to
`MAX_BACKOFF` sandbox seconds) as client-go's rate limiter does. A ReplicaSet
being deleted keeps its pods for the garbage collector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import pods as p
from . import recorder as events
from . import resources as r
from .conditions import find_condition, remove_condition, set_condition
from .errors import ApiError
from .store import Store, timestamp

if TYPE_CHECKING:
    from .controller import Timing
    from .kubelet import Kubelet

COMPONENT = "replicaset-controller"
FIRST_BACKOFF, MAX_BACKOFF = 0.1, 5.0


def owned_by(owner: dict) -> Callable[[dict], bool]:
    """A predicate: is an object controlled by `owner` (and not already being deleted)?"""
    uid = owner["metadata"]["uid"]

    def predicate(obj: dict) -> bool:
        controller = p.controller_of(obj)
        return controller is not None and controller.get("uid") == uid and not obj["metadata"].get(
            "deletionTimestamp")
    return predicate


def adopt(store: Store, resource: r.ResourceType, owner: dict) -> None:
    """Make `owner` the controller of the objects its selector matches that have none (after an orphaning)."""
    selector = owner["spec"]["selector"].get("matchLabels") or {}

    def orphan(obj: dict) -> bool:
        labels = obj["metadata"].get("labels") or {}
        return (p.controller_of(obj) is None and not obj["metadata"].get("deletionTimestamp")
                and all(labels.get(key) == value for key, value in selector.items()))

    def adopted(current: dict) -> dict:
        owners = current["metadata"].get("ownerReferences") or []
        current["metadata"]["ownerReferences"] = [*owners, p.owner_reference(owner)]
        return current

    orphans, _ = store.list(resource, owner["metadata"]["namespace"], orphan)
    for obj in orphans:
        store.update(resource, obj["metadata"]["namespace"], obj["metadata"]["name"], adopted)


class ReplicaSetController:
    def __init__(self, store: Store, timing: Timing, kubelet: Kubelet) -> None:
        self._store = store
        self._kubelet = kubelet
        self._backoff: dict[str, tuple[float, float]] = {}  # uid → (retry at, last wait)

    def sync(self, now: float) -> None:
        live = self._store.each(r.REPLICASETS, lambda replica_set: self._reconcile(replica_set, now))
        self._backoff = {uid: v for uid, v in self._backoff.items() if uid in live}

    def _reconcile(self, replica_set: dict, now: float) -> None:
        metadata, spec = replica_set["metadata"], replica_set["spec"]
        namespace, uid = metadata["namespace"], metadata["uid"]
        failure = None
        if not metadata.get("deletionTimestamp"):
            adopt(self._store, r.PODS, replica_set)
        pods, _ = self._store.list(r.PODS, namespace, owned_by(replica_set))
        if not metadata.get("deletionTimestamp"):
            wanted = spec.get("replicas", 1)
            if len(pods) < wanted and self._backoff.get(uid, (0.0, 0.0))[0] <= now:
                pods, failure = self._create(replica_set, pods, wanted - len(pods), now)
            elif len(pods) > wanted:
                pods = self._remove(replica_set, pods, len(pods) - wanted)
        self._write_status(replica_set, pods, failure, now)

    def _create(self, replica_set: dict, pods: list[dict], count: int, now: float) -> tuple[list[dict], str | None]:
        for _ in range(count):
            try:
                pod = self._store.create(r.PODS, replica_set["metadata"]["namespace"], p.new_pod(replica_set))
            except ApiError as error:
                wait = min(self._backoff.get(replica_set["metadata"]["uid"], (0.0, FIRST_BACKOFF / 2))[1] * 2,
                           MAX_BACKOFF)
                self._backoff[replica_set["metadata"]["uid"]] = (now + wait, wait)
                events.record(self._store, replica_set, events.WARNING, "FailedCreate",
                              f"Error creating: {error.message}", COMPONENT)
                return pods, error.message
            pods = [*pods, pod]
            events.record(self._store, replica_set, events.NORMAL, "SuccessfulCreate",
                          f"Created pod: {pod['metadata']['name']}", COMPONENT)
        self._backoff.pop(replica_set["metadata"]["uid"], None)
        return pods, None

    def _remove(self, replica_set: dict, pods: list[dict], count: int) -> list[dict]:
        # Unready before ready, then the newest first (the real controller's ActivePods ordering, simplified).
        newest_first = sorted(pods, key=lambda pod: pod["metadata"]["creationTimestamp"], reverse=True)
        victims = sorted(newest_first, key=p.is_ready)[:count]
        for pod in victims:
            self._store.delete(r.PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
            events.record(self._store, replica_set, events.NORMAL, "SuccessfulDelete",
                          f"Deleted pod: {pod['metadata']['name']}", COMPONENT)
        gone = {pod["metadata"]["uid"] for pod in victims}
        return [pod for pod in pods if pod["metadata"]["uid"] not in gone]

    def _write_status(self, replica_set: dict, pods: list[dict], failure: str | None, now: float) -> None:
        metadata, spec = replica_set["metadata"], replica_set["spec"]
        previous = replica_set.get("status") or {}
        min_ready = spec.get("minReadySeconds", 0)
        counts = {
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": sum(p.is_ready(pod) for pod in pods),
            "availableReplicas": sum(self._kubelet.available(pod, min_ready, now) for pod in pods),
        }
        status: dict = {"replicas": len(pods), **{key: value for key, value in counts.items() if value},
                        "observedGeneration": metadata["generation"]}
        conditions = [dict(c) for c in previous.get("conditions") or []]
        if failure is not None:
            set_condition(conditions, "ReplicaFailure", "True", "FailedCreate", failure, timestamp(),
                          update_time=False)
        elif len(pods) == spec.get("replicas", 1) and find_condition(conditions, "ReplicaFailure"):
            conditions = remove_condition(conditions, "ReplicaFailure")
        if conditions:
            status["conditions"] = conditions
        self._store.set_status(r.REPLICASETS, replica_set, status)
