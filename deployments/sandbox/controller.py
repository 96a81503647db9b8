"""A simulated Deployment controller and kubelet, running in a background thread.

Every tick it reconciles each Deployment: it creates pods for the current pod
template (Pending, then Running and ready `rollout_delay` seconds later),
removes pods of older templates once the new ones are all ready (a rolling
update that never drops below the old availability), and writes the
Deployment status that `kubectl rollout status` reads: observedGeneration
(also after `rollout_delay`), replica counts, and the Available and
Progressing conditions. Pods of a broken image (see `pods`) never become
ready, so the rollout stalls and, after the progress deadline, reports
`ProgressDeadlineExceeded` while the old pods keep serving.

Its bookkeeping (when each generation and pod was first seen) lives only in
the controller thread, so it needs no lock of its own; every store access for
one Deployment happens inside `store.atomic()` so API requests never see half
a reconcile.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from . import pods as p
from . import resources as r
from .errors import ApiError
from .jobs import JobRunner
from .store import Store, timestamp

logger = logging.getLogger(__name__)

# How often a crash-looping container is counted as restarted.
RESTART_INTERVAL = 0.2


@dataclass
class _Rollout:
    generation: int
    started: float  # time.monotonic() when this generation was first seen


def _max_unavailable(spec: dict) -> int:
    """The rolling update's maxUnavailable as a pod count (percentages round down, as in Kubernetes)."""
    value = ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return math.floor(spec["replicas"] * int(value[:-1]) / 100)
    return int(value)


def _set_condition(conditions: list[dict], kind: str, status: str, reason: str, message: str, now: str) -> None:
    """Update a condition in place, keeping lastTransitionTime unless its status flips."""
    for condition in conditions:
        if condition["type"] == kind:
            if (condition["status"], condition["reason"], condition["message"]) != (status, reason, message):
                if condition["status"] != status:
                    condition["lastTransitionTime"] = now
                condition.update(status=status, reason=reason, message=message, lastUpdateTime=now)
            return
    conditions.append({"type": kind, "status": status, "reason": reason, "message": message,
                       "lastUpdateTime": now, "lastTransitionTime": now})


class RolloutController:
    """Drives Deployments towards their spec; see the module docstring."""

    def __init__(self, store: Store, rollout_delay: float, progress_deadline_cap: float, tick: float = 0.05) -> None:
        self._store = store
        self._rollout_delay = rollout_delay
        self._progress_deadline_cap = progress_deadline_cap
        self._tick = tick
        self._jobs = JobRunner(store, rollout_delay)
        self._rollouts: dict[str, _Rollout] = {}  # by Deployment uid
        self._pod_started: dict[str, float] = {}  # by pod uid
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="sandbox-rollout-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self._tick):
            try:
                self._reconcile_all()
                self._jobs.reconcile_all(time.monotonic())
            except Exception:  # keep simulating: one bad object must not stop every rollout
                logger.exception("sandbox controller: reconcile failed")

    def _reconcile_all(self) -> None:
        """One pass over every Deployment (what each tick does)."""
        deployments, _ = self._store.list(r.DEPLOYMENTS, None)
        live_pods: set[str] = set()
        for listed in deployments:
            metadata = listed["metadata"]
            with self._store.atomic():
                try:
                    deployment = self._store.get(r.DEPLOYMENTS, metadata["namespace"], metadata["name"])
                except ApiError:  # deleted since it was listed
                    continue
                live_pods |= self._reconcile(deployment, time.monotonic())
        live_deployments = {d["metadata"]["uid"] for d in deployments}
        self._rollouts = {uid: v for uid, v in self._rollouts.items() if uid in live_deployments}
        self._pod_started = {uid: v for uid, v in self._pod_started.items() if uid in live_pods}

    def _reconcile(self, deployment: dict, now: float) -> set[str]:
        """Bring one Deployment's pods and status a step closer to its spec; returns its pods' uids."""
        metadata, spec = deployment["metadata"], deployment["spec"]
        namespace, uid = metadata["namespace"], metadata["uid"]
        rollout = self._rollouts.get(uid)
        if rollout is None or rollout.generation != metadata["generation"]:
            rollout = self._rollouts[uid] = _Rollout(metadata["generation"], now)

        pod_hash = p.template_hash(spec["template"])
        owned, _ = self._store.list(r.PODS, namespace, lambda pod: any(
            owner.get("uid") == uid for owner in pod["metadata"].get("ownerReferences") or []))
        current = [pod for pod in owned if p.pod_template_hash(pod) == pod_hash]
        old = [pod for pod in owned if p.pod_template_hash(pod) != pod_hash]

        desired = spec["replicas"]
        current.sort(key=p.is_ready, reverse=True)  # scaling down removes unready pods first
        for surplus in current[desired:]:
            self._store.delete(r.PODS, namespace, surplus["metadata"]["name"])
        current = current[:desired]
        current += [self._create_pod(deployment, pod_hash, now) for _ in range(desired - len(current))]
        current = [self._progress_pod(pod, now) for pod in current]

        if sum(p.is_ready(pod) for pod in current) >= desired:
            for stale in old:
                self._store.delete(r.PODS, namespace, stale["metadata"]["name"])
            old = []

        observed = now - rollout.started >= self._rollout_delay
        status = self._status(deployment, current, old, pod_hash, rollout, observed, now)
        self._store.update(r.DEPLOYMENTS, namespace, metadata["name"], lambda d: {**d, "status": status},
                           status_only=True)
        return {pod["metadata"]["uid"] for pod in current + old}

    def _create_pod(self, deployment: dict, pod_hash: str, now: float) -> dict:
        pod = self._store.create(r.PODS, deployment["metadata"]["namespace"], p.new_pod(deployment, pod_hash))
        self._pod_started[pod["metadata"]["uid"]] = now
        return self._write_pod_status(pod, p.pending_status(pod, timestamp()))

    def _progress_pod(self, pod: dict, now: float) -> dict:
        """Start the pod's containers once `rollout_delay` has passed; count crash-loop restarts."""
        running_for = now - self._pod_started.setdefault(pod["metadata"]["uid"], now) - self._rollout_delay
        if running_for < 0:
            return pod
        restarts = 1 + int(running_for / RESTART_INTERVAL) if p.pod_is_broken(pod) else 0
        statuses = pod["status"].get("containerStatuses") or []
        if pod["status"]["phase"] == "Running" and max((s["restartCount"] for s in statuses), default=0) == restarts:
            return pod
        return self._write_pod_status(pod, p.running_status(pod, timestamp(), restarts))

    def _write_pod_status(self, pod: dict, status: dict) -> dict:
        metadata = pod["metadata"]
        return self._store.update(r.PODS, metadata["namespace"], metadata["name"],
                                  lambda current: {**current, "status": status}, status_only=True)

    def _status(self, deployment: dict, current: list[dict], old: list[dict], pod_hash: str,
                rollout: _Rollout, observed: bool, now: float) -> dict:
        """The Deployment status for these pods; zero counts are omitted, as the real API does."""
        metadata, spec = deployment["metadata"], deployment["spec"]
        previous = deployment.get("status") or {}
        desired = spec["replicas"]
        ready = sum(p.is_ready(pod) for pod in current + old)
        counts = {
            "replicas": len(current) + len(old),
            "updatedReplicas": len(current),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "unavailableReplicas": max(desired - ready, 0),
        }
        status: dict = {key: value for key, value in counts.items() if value}
        observed_generation = metadata["generation"] if observed else previous.get("observedGeneration")
        if observed_generation is not None:
            status["observedGeneration"] = observed_generation

        stamp = timestamp()
        conditions = [dict(c) for c in previous.get("conditions") or []]
        if ready >= desired - _max_unavailable(spec):
            _set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                           "Deployment has minimum availability.", stamp)
        else:
            _set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.", stamp)
        replica_set = f'ReplicaSet "{metadata["name"]}-{pod_hash}"'
        complete = observed and not old and sum(p.is_ready(pod) for pod in current) == desired
        deadline = min(spec.get("progressDeadlineSeconds", 600), self._progress_deadline_cap)
        if complete:
            _set_condition(conditions, "Progressing", "True", "NewReplicaSetAvailable",
                           f"{replica_set} has successfully progressed.", stamp)
        elif now - rollout.started > deadline:
            _set_condition(conditions, "Progressing", "False", "ProgressDeadlineExceeded",
                           f"{replica_set} has timed out progressing.", stamp)
        else:
            _set_condition(conditions, "Progressing", "True", "ReplicaSetUpdated",
                           f"{replica_set} is progressing.", stamp)
        status["conditions"] = conditions
        return status
