"""The simulated Deployment controller: ReplicaSets per pod template, rolling updates, rollout status.

As kube-controller-manager's does, for each Deployment it
- adopts ReplicaSets its selector matches that have no controller (orphans);
- finds the ReplicaSet whose template equals the Deployment's (ignoring the
  `pod-template-hash` label) or creates one, `{deployment}-{hash}`, owned by
  the Deployment, labelled and selected by `pod-template-hash`, annotated with
  `deployment.kubernetes.io/revision` (the highest so far plus one; a rollback
  to an old template revives its ReplicaSet under a new revision, the old one
  kept in `revision-history`); the Deployment carries the same revision;
- scales ReplicaSets within `maxSurge` (rounded up) above and `maxUnavailable`
  (rounded down) below `spec.replicas` for `RollingUpdate` — old ReplicaSets
  first lose their unavailable pods, then available ones only while the
  minimum stays available — or old-to-zero-then-new for `Recreate`, with
  `ScalingReplicaSet` events;
- with `spec.paused`, creates no ReplicaSet and only keeps the replica count;
- keeps `revisionHistoryLimit` scaled-down old ReplicaSets once complete;
- writes the status `kubectl rollout status` reads, with `Available` and
  `Progressing`; the progress deadline runs from the last progress (more
  updated, ready or available pods, fewer old ones), in sandbox time.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

from . import pods as p
from . import recorder as events
from . import resources as r
from .conditions import find_condition, set_condition
from .replicaset_controller import adopt, owned_by
from .store import Store, timestamp

if TYPE_CHECKING:
    from .controller import Timing

COMPONENT = "deployment-controller"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Deployment annotations not copied to its ReplicaSets.
_NOT_COPIED = frozenset({REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS,
                         "kubectl.kubernetes.io/last-applied-configuration"})


def revision_of(obj: dict) -> int:
    value = (obj["metadata"].get("annotations") or {}).get(REVISION, "0")
    return int(value) if value.isdigit() else 0


def _scaled(value: int | str, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = total * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def fenceposts(spec: dict) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts; both zero would deadlock, so unavailable becomes 1."""
    rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
    desired = spec["replicas"]
    surge = _scaled(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    return (surge, 1) if surge == 0 and unavailable == 0 else (surge, unavailable)


def _count(rs: dict, field: str) -> int:
    return (rs.get("status") or {}).get(field, 0) or 0


class DeploymentController:
    def __init__(self, store: Store, timing: Timing) -> None:
        self._store = store
        self._timing = timing
        self._last_progress: dict[str, float] = {}  # Deployment uid → time.monotonic() of its last progress

    def sync(self, now: float) -> None:
        live = self._store.each(r.DEPLOYMENTS, lambda deployment: self._reconcile(deployment, now))
        self._last_progress = {uid: t for uid, t in self._last_progress.items() if uid in live}

    def _reconcile(self, deployment: dict, now: float) -> None:
        metadata, spec = deployment["metadata"], deployment["spec"]
        if metadata.get("deletionTimestamp"):
            return  # being deleted: its ReplicaSets are the garbage collector's now
        adopt(self._store, r.REPLICASETS, deployment)
        replica_sets, _ = self._store.list(r.REPLICASETS, metadata["namespace"], owned_by(deployment))
        template = p.template_without_hash(spec["template"])
        new = next((rs for rs in replica_sets if p.template_without_hash(rs["spec"]["template"]) == template), None)
        old = sorted((rs for rs in replica_sets if rs is not new), key=revision_of)
        created = False
        if new is None and not spec.get("paused"):
            new, created = self._create_replica_set(deployment, old), True
        elif new is not None and old and revision_of(new) <= revision_of(old[-1]):
            new = self._revive(new, old)
        if new is not None and revision_of(new) != revision_of(deployment):
            deployment = self._annotate(deployment, REVISION, str(revision_of(new)))

        if spec.get("paused"):
            self._keep_scale(deployment, new, old)
        elif (spec.get("strategy") or {}).get("type") == "Recreate":
            self._recreate(deployment, new, old)
        else:
            self._roll(deployment, new, old)
        replica_sets, _ = self._store.list(r.REPLICASETS, metadata["namespace"], owned_by(deployment))
        new = next((rs for rs in replica_sets if new is not None and rs["metadata"]["uid"] == new["metadata"]["uid"]),
                   None)
        old = [rs for rs in replica_sets if rs is not new]
        status = self._status(deployment, new, old, created, now)
        if self._complete(deployment, status):
            self._prune_history(deployment, old)
        self._store.set_status(r.DEPLOYMENTS, deployment, status)

    # ReplicaSets

    def _create_replica_set(self, deployment: dict, old: list[dict]) -> dict:
        metadata, spec = deployment["metadata"], deployment["spec"]
        template = copy.deepcopy(spec["template"])
        pod_hash = p.template_hash(template)
        template.setdefault("metadata", {}).setdefault("labels", {})[p.TEMPLATE_HASH_LABEL] = pod_hash
        selector = copy.deepcopy(spec["selector"])
        selector.setdefault("matchLabels", {})[p.TEMPLATE_HASH_LABEL] = pod_hash
        annotations = {key: value for key, value in (metadata.get("annotations") or {}).items()
                       if key not in _NOT_COPIED}
        surge, _ = fenceposts(spec)
        annotations |= {REVISION: str(max(map(revision_of, old), default=0) + 1),
                        DESIRED_REPLICAS: str(spec["replicas"]), MAX_REPLICAS: str(spec["replicas"] + surge)}
        replica_set_spec = {"replicas": 0, "selector": selector, "template": template}
        if spec.get("minReadySeconds"):
            replica_set_spec["minReadySeconds"] = spec["minReadySeconds"]
        return self._store.create(r.REPLICASETS, metadata["namespace"], {
            "metadata": {"name": f"{metadata['name']}-{pod_hash}", "labels": template["metadata"]["labels"],
                         "annotations": annotations, "ownerReferences": [p.owner_reference(deployment)]},
            "spec": replica_set_spec,
        })

    def _revive(self, replica_set: dict, old: list[dict]) -> dict:
        """An old template is back (a rollback): its ReplicaSet takes the next revision, remembering its earlier one."""
        earlier = str(revision_of(replica_set))
        history = (replica_set["metadata"].get("annotations") or {}).get(REVISION_HISTORY)
        replica_set = self._annotate(replica_set, REVISION, str(revision_of(old[-1]) + 1), resource=r.REPLICASETS)
        return self._annotate(replica_set, REVISION_HISTORY, f"{history},{earlier}" if history else earlier,
                              resource=r.REPLICASETS)

    def _annotate(self, obj: dict, key: str, value: str, resource: r.ResourceType = r.DEPLOYMENTS) -> dict:
        def annotated(current: dict) -> dict:
            current["metadata"].setdefault("annotations", {})[key] = value
            return current
        metadata = obj["metadata"]
        return self._store.update(resource, metadata["namespace"], metadata["name"], annotated)

    def _scale(self, deployment: dict, replica_set: dict | None, replicas: int) -> None:
        if replica_set is None:
            return
        before = replica_set["spec"].get("replicas", 0)
        if before == replicas:
            return
        surge, _ = fenceposts(deployment["spec"])
        desired = deployment["spec"]["replicas"]

        def scaled(current: dict) -> dict:
            current["spec"]["replicas"] = replicas
            current["metadata"].setdefault("annotations", {}).update(
                {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(desired + surge)})
            return current
        metadata = replica_set["metadata"]
        self._store.update(r.REPLICASETS, metadata["namespace"], metadata["name"], scaled)
        replica_set["spec"]["replicas"] = replicas
        direction = "up" if replicas > before else "down"
        events.record(self._store, deployment, events.NORMAL, "ScalingReplicaSet",
                      f"Scaled {direction} replica set {metadata['name']} to {replicas} from {before}", COMPONENT)

    # Strategies

    def _keep_scale(self, deployment: dict, new: dict | None, old: list[dict]) -> None:
        """Paused: no rollout, but `spec.replicas` still applies (to the newest active ReplicaSet)."""
        active = [rs for rs in [new, *reversed(old)] if rs is not None and rs["spec"].get("replicas", 0) > 0]
        target = active[0] if active else (new or (old[-1] if old else None))
        others = sum(rs["spec"].get("replicas", 0) for rs in active[1:])
        self._scale(deployment, target, max(deployment["spec"]["replicas"] - others, 0))

    def _recreate(self, deployment: dict, new: dict, old: list[dict]) -> None:
        for rs in old:
            self._scale(deployment, rs, 0)
        if all(_count(rs, "replicas") == 0 for rs in old):
            self._scale(deployment, new, deployment["spec"]["replicas"])

    def _roll(self, deployment: dict, new: dict, old: list[dict]) -> None:
        """One step of a rolling update, as the real controller's reconcileNewReplicaSet / OldReplicaSets."""
        spec = deployment["spec"]
        desired = spec["replicas"]
        surge, unavailable = fenceposts(spec)
        everyone = [new, *old]
        total = sum(rs["spec"].get("replicas", 0) for rs in everyone)
        new_replicas = new["spec"].get("replicas", 0)
        if new_replicas > desired:
            self._scale(deployment, new, desired)
        elif new_replicas < desired:
            room = min(desired + surge - total, desired - new_replicas)
            if room > 0:
                self._scale(deployment, new, new_replicas + room)

        min_available = desired - unavailable
        new_unavailable = new["spec"]["replicas"] - _count(new, "availableReplicas")
        total = sum(rs["spec"].get("replicas", 0) for rs in everyone)
        budget = total - min_available - new_unavailable
        for rs in old:  # first the old pods that are not available anyway
            if budget <= 0:
                break
            unhealthy = rs["spec"].get("replicas", 0) - _count(rs, "availableReplicas")
            cut = min(max(unhealthy, 0), budget)
            if cut:
                self._scale(deployment, rs, rs["spec"]["replicas"] - cut)
                budget -= cut
        budget = sum(_count(rs, "availableReplicas") for rs in everyone) - min_available
        for rs in old:  # then available ones, while the minimum stays available
            if budget <= 0:
                break
            cut = min(rs["spec"].get("replicas", 0), budget)
            if cut:
                self._scale(deployment, rs, rs["spec"]["replicas"] - cut)
                budget -= cut

    def _prune_history(self, deployment: dict, old: list[dict]) -> None:
        limit = deployment["spec"].get("revisionHistoryLimit", 10)
        idle = [rs for rs in sorted(old, key=revision_of)
                if rs["spec"].get("replicas", 0) == 0 and _count(rs, "replicas") == 0]
        for rs in idle[:max(len(idle) - limit, 0)]:
            self._store.delete(r.REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])

    # Status

    @staticmethod
    def _complete(deployment: dict, status: dict) -> bool:
        desired = deployment["spec"]["replicas"]
        return all(status.get(field, 0) == desired for field in ("updatedReplicas", "replicas", "availableReplicas"))

    def _status(self, deployment: dict, new: dict | None, old: list[dict], created: bool, now: float) -> dict:
        metadata, spec = deployment["metadata"], deployment["spec"]
        previous = deployment.get("status") or {}
        desired = spec["replicas"]
        everyone = [rs for rs in [new, *old] if rs is not None]
        available = sum(_count(rs, "availableReplicas") for rs in everyone)
        counts = {
            "replicas": sum(_count(rs, "replicas") for rs in everyone),
            "updatedReplicas": _count(new, "replicas") if new is not None else 0,
            "readyReplicas": sum(_count(rs, "readyReplicas") for rs in everyone),
            "availableReplicas": available,
            "unavailableReplicas": max(desired - available, 0),
        }
        status: dict = {"observedGeneration": metadata["generation"],
                        **{key: value for key, value in counts.items() if value}}
        stamp = timestamp()
        conditions = [dict(c) for c in previous.get("conditions") or []]
        _, unavailable = fenceposts(spec)
        if available >= desired - unavailable:
            set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                          "Deployment has minimum availability.", stamp)
        else:
            set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                          "Deployment does not have minimum availability.", stamp)
        self._progressing(deployment, conditions, new, counts, created, now, stamp)
        status["conditions"] = conditions
        return status

    def _progressing(self, deployment: dict, conditions: list[dict], new: dict | None, counts: dict,
                     created: bool, now: float, stamp: str) -> None:
        """The Progressing condition, as the real controller's syncRolloutStatus decides it."""
        uid, spec = deployment["metadata"]["uid"], deployment["spec"]
        previous = deployment.get("status") or {}
        current = find_condition(conditions, "Progressing")
        if spec.get("paused"):
            set_condition(conditions, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", stamp)
            self._last_progress[uid] = now
            return
        if current is not None and current["reason"] == "DeploymentPaused":
            set_condition(conditions, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", stamp)
            self._last_progress[uid] = now
            return
        name = f'ReplicaSet "{new["metadata"]["name"]}"'
        if created:
            set_condition(conditions, "Progressing", "True", "NewReplicaSetCreated",
                          f'Created new replica set "{new["metadata"]["name"]}"', stamp)
            self._last_progress[uid] = now
            return
        was = {key: previous.get(key, 0) or 0 for key in counts}
        progressed = (counts["updatedReplicas"] > was["updatedReplicas"] or counts["readyReplicas"] > was["readyReplicas"]
                      or counts["availableReplicas"] > was["availableReplicas"]
                      or counts["replicas"] - counts["updatedReplicas"] < was["replicas"] - was["updatedReplicas"])
        deadline = self._timing.seconds(spec.get("progressDeadlineSeconds", 600))
        if self._complete(deployment, counts):
            set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                          f"{name} has successfully progressed.", stamp)
        elif progressed or uid not in self._last_progress:
            set_condition(conditions, "Progressing", "True", "ReplicaSetUpdated", f"{name} is progressing.", stamp,
                          touch=True)
            self._last_progress[uid] = now
        elif now - self._last_progress[uid] > deadline:
            set_condition(conditions, "Progressing", "False", "ProgressDeadlineExceeded",
                          f"{name} has timed out progressing.", stamp)
