"""The simulated scheduler and kubelet: every pod (a controller's or a client's) goes Pending, then Running.

A new pod is scheduled (`Scheduled`; `spec.nodeName` stays unset) and Pending (ContainerCreating)
at once; `rollout_delay` later its containers run (`Pulled`, `Created`,
`Started`) and it is ready, unless an image is broken (see `pods`), in which
case it crash-loops (`BackOff`), its restart count rising every `RESTART_INTERVAL`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import pods as p
from . import recorder as events
from . import resources as r
from .store import Store, timestamp

if TYPE_CHECKING:
    from .controller import Timing

# How often a crash-looping container is counted as restarted.
RESTART_INTERVAL = 0.2
NODE_NAME = "sandbox-node"
KUBELET = "kubelet"


class Kubelet:
    def __init__(self, store: Store, timing: Timing) -> None:
        self._store = store
        self._timing = timing
        self._started: dict[str, float] = {}  # pod uid → time.monotonic() when first seen
        self._ready_since: dict[str, float] = {}  # pod uid → when it became ready

    def available(self, pod: dict, min_ready_seconds: float, now: float) -> bool:
        """Ready for at least `min_ready_seconds` (Kubernetes seconds), as ReplicaSets count availability."""
        since = self._ready_since.get(pod["metadata"]["uid"])
        return p.is_ready(pod) and since is not None and now - since >= self._timing.seconds(min_ready_seconds)

    def sync(self, now: float) -> None:
        live = self._store.each(r.PODS, lambda pod: self._progress(pod, now))
        self._started = {uid: t for uid, t in self._started.items() if uid in live}
        self._ready_since = {uid: t for uid, t in self._ready_since.items() if uid in live}

    def _progress(self, pod: dict, now: float) -> None:
        uid = pod["metadata"]["uid"]
        if uid not in self._started:
            self._started[uid] = now
            if not (pod.get("status") or {}).get("startTime"):
                self._schedule(pod)
            return
        running_for = now - self._started[uid] - self._timing.rollout_delay
        if running_for < 0:
            return
        restarts = 1 + int(running_for / RESTART_INTERVAL) if p.pod_is_broken(pod) else 0
        statuses = pod["status"].get("containerStatuses") or []
        if pod["status"].get("phase") != "Running":
            self._started_containers(pod)
        if pod["status"].get("phase") != "Running" or max((s["restartCount"] for s in statuses), default=0) != restarts:
            pod = self._write(pod, p.running_status(pod, timestamp(), restarts))
            if restarts:
                for container in pod["spec"]["containers"]:
                    if p.is_broken_image(container["image"]):
                        events.record(self._store, pod, events.WARNING, "BackOff", (
                            f"Back-off restarting failed container {container['name']} in pod "
                            f"{pod['metadata']['name']}_{pod['metadata']['namespace']}({uid})"), KUBELET)
        if p.is_ready(pod):
            self._ready_since.setdefault(uid, now)

    def _schedule(self, pod: dict) -> None:
        """Schedule the pod (to a node the sandbox names but does not record) and mark its containers as being created."""
        metadata = pod["metadata"]
        events.record(self._store, pod, events.NORMAL, "Scheduled",
                      f"Successfully assigned {metadata['namespace']}/{metadata['name']} to {NODE_NAME}",
                      "default-scheduler")
        self._write(pod, p.pending_status(pod, timestamp()))

    def _started_containers(self, pod: dict) -> None:
        for container in pod["spec"]["containers"]:
            name = container["name"]
            events.record(self._store, pod, events.NORMAL, "Pulled",
                          f'Container image "{container["image"]}" already present on machine', KUBELET)
            events.record(self._store, pod, events.NORMAL, "Created", f"Created container {name}", KUBELET)
            events.record(self._store, pod, events.NORMAL, "Started", f"Started container {name}", KUBELET)

    def _write(self, pod: dict, status: dict) -> dict:
        return self._store.set_status(r.PODS, pod, status)
