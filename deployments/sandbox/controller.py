"""The sandbox's controller manager: the simulated controllers and kubelet, ticking in one background thread.

Each tick runs, in order, what a real cluster runs concurrently: the garbage
collector (foreground deletions), the HPA controller, the Deployment
controller (ReplicaSets, rollouts, Deployment status), the ReplicaSet
controller (pods, quota failures), the kubelet (pod phases), the Job runner
(`jobs`) and the quota controller (`ResourceQuota.status`). Their bookkeeping
lives in the controller thread only; each object is reconciled under the
store's lock (`Store.each`), so API requests never see half a reconcile.

Sandbox time (`Timing`): a simulated pod starts `rollout_delay` seconds after
it is created, and every duration a spec states in Kubernetes seconds
(`progressDeadlineSeconds`, `minReadySeconds`, the HPA's downscale
stabilisation window) lasts `time_scale` sandbox seconds per Kubernetes
second, so a 5 s progress deadline fails a stalled rollout after 2 s at the
default 0.4.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from . import quota
from . import resources as r
from .deployment_controller import DeploymentController
from .hpa_controller import HorizontalPodAutoscalerController
from .jobs import JobRunner
from .kubelet import Kubelet
from .replicaset_controller import ReplicaSetController
from .store import Store

logger = logging.getLogger(__name__)

DEFAULT_TIME_SCALE = 0.4


@dataclass(frozen=True)
class Timing:
    """How sandbox time relates to the durations in specs (see the module docstring)."""

    rollout_delay: float = 0.2  # sandbox seconds from a pod's creation to its containers running
    time_scale: float = DEFAULT_TIME_SCALE  # sandbox seconds per Kubernetes second

    def seconds(self, kubernetes_seconds: float) -> float:
        return kubernetes_seconds * self.time_scale


class ControllerManager:
    """Runs every simulated controller each `tick` seconds; see the module docstring."""

    def __init__(self, store: Store, timing: Timing, tick: float = 0.05) -> None:
        self._store = store
        self._tick = tick
        self._kubelet = Kubelet(store, timing)
        self._controllers = (
            HorizontalPodAutoscalerController(store, timing),
            DeploymentController(store, timing),
            ReplicaSetController(store, timing, self._kubelet),
            self._kubelet,
        )
        self._jobs = JobRunner(store, timing.rollout_delay)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="sandbox-controllers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self._tick):
            try:
                self.sync(time.monotonic())
            except Exception:  # keep simulating: one bad object must not stop every controller
                logger.exception("sandbox controllers: reconcile failed")

    def sync(self, now: float) -> None:
        """One pass of every controller (what each tick does)."""
        self._store.collect_garbage()
        for controller in self._controllers:
            controller.sync(now)
        self._jobs.reconcile_all(now)
        self._sync_quotas()

    def _sync_quotas(self) -> None:
        def publish(resource_quota: dict) -> None:
            metadata = resource_quota["metadata"]
            self._store.set_status(r.RESOURCEQUOTAS, resource_quota,
                                   quota.status(resource_quota, self._store.namespace_contents(metadata["namespace"])))
        self._store.each(r.RESOURCEQUOTAS, publish)
