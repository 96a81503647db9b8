"""The simulated HorizontalPodAutoscaler controller (autoscaling/v2), on a simulated CPU utilisation.

There is no metrics server: a Deployment's CPU utilisation (percent of its
pods' requests) is what its annotation `sandbox.slipway.dev/cpu-utilization`
says (`kubectl annotate deployment/web sandbox.slipway.dev/cpu-utilization=150`).
Without it the HPA reports `ScalingActive=False` (`FailedGetResourceMetric`), as a
cluster without metrics does, and only enforces `minReplicas`/`maxReplicas`.

With it, the desired count is the real algorithm's `ceil(current × utilisation /
target)`, unchanged within the 10 % tolerance, clamped to min/max
(`ScalingLimited`), and a scale-down takes the highest recommendation of the
stabilisation window (300 Kubernetes seconds, in sandbox time). It scales the
target through its `spec.replicas`, records `SuccessfulRescale`, and writes
`currentReplicas`, `desiredReplicas`, `currentMetrics`, `lastScaleTime` and the
AbleToScale / ScalingActive / ScalingLimited conditions. Simplified: it runs
every tick rather than every 15 s, without scaling policies (rate limits), and
supports the `cpu` Resource metric of Deployment targets only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from . import recorder as events
from . import resources as r
from .conditions import find_condition, set_condition
from .errors import ApiError
from .store import Store, timestamp

if TYPE_CHECKING:
    from .controller import Timing

COMPONENT = "horizontal-pod-autoscaler"
CPU_UTILIZATION_ANNOTATION = "sandbox.slipway.dev/cpu-utilization"
TOLERANCE = 0.1
DOWNSCALE_STABILIZATION_SECONDS = 300
DEFAULT_CPU_TARGET = 80
_CPU_METRIC = "cpu resource utilization (percentage of request)"
_NO_METRICS = ("the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get "
               "metrics for resource cpu: no metrics returned from resource metrics API")


def cpu_target(spec: dict) -> int:
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            return (resource.get("target") or {}).get("averageUtilization", DEFAULT_CPU_TARGET)
    return DEFAULT_CPU_TARGET


def simulated_utilization(deployment: dict) -> int | None:
    value = (deployment["metadata"].get("annotations") or {}).get(CPU_UTILIZATION_ANNOTATION, "")
    return int(value) if value.isdigit() else None


class HorizontalPodAutoscalerController:
    def __init__(self, store: Store, timing: Timing) -> None:
        self._store = store
        self._timing = timing
        self._recommendations: dict[str, list[tuple[float, int]]] = {}  # HPA uid → (time, recommendation)

    def sync(self, now: float) -> None:
        live = self._store.each(r.HORIZONTALPODAUTOSCALERS, lambda hpa: self._reconcile(hpa, now))
        self._recommendations = {uid: v for uid, v in self._recommendations.items() if uid in live}

    def _reconcile(self, hpa: dict, now: float) -> None:
        metadata, spec = hpa["metadata"], hpa["spec"]
        namespace = metadata["namespace"]
        previous = hpa.get("status") or {}
        conditions = [dict(c) for c in previous.get("conditions") or []]
        stamp = timestamp()
        status: dict = {"observedGeneration": metadata["generation"], "desiredReplicas": 0}
        if "lastScaleTime" in previous:
            status["lastScaleTime"] = previous["lastScaleTime"]
        target = spec.get("scaleTargetRef") or {}
        try:
            if target.get("kind") != "Deployment":
                raise ApiError(404, "NotFound", f'no matches for kind "{target.get("kind")}"')
            deployment = self._store.get(r.DEPLOYMENTS, namespace, target.get("name", ""))
        except ApiError:
            set_condition(conditions, "AbleToScale", "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: "
                          f'deployments/scale.apps "{target.get("name", "")}" not found', stamp, update_time=False)
            self._write(hpa, status | {"conditions": conditions})
            return

        current = deployment["spec"]["replicas"]
        low, high = spec.get("minReplicas", 1), spec["maxReplicas"]
        desired, reason = self._desired(hpa, deployment, current, low, high, conditions, now, stamp)
        status["currentReplicas"] = (deployment.get("status") or {}).get("replicas", 0)
        utilization = simulated_utilization(deployment)
        if utilization is not None and current:
            status["currentMetrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "current": {"averageUtilization": utilization}}}]
        if desired != current:
            def rescaled(d: dict) -> dict:
                d["spec"]["replicas"] = desired
                return d
            self._store.update(r.DEPLOYMENTS, namespace, deployment["metadata"]["name"], rescaled)
            events.record(self._store, hpa, events.NORMAL, "SuccessfulRescale",
                          f"New size: {desired}; reason: {reason}", COMPONENT)
            set_condition(conditions, "AbleToScale", "True", "SucceededRescale",
                          f"the HPA controller was able to update the target scale to {desired}", stamp,
                          update_time=False)
            status["lastScaleTime"] = stamp
        elif reason == "stabilized":
            set_condition(conditions, "AbleToScale", "True", "ScaleDownStabilized",
                          "recent recommendations were higher than current one, applying the highest recent "
                          "recommendation", stamp, update_time=False)
        else:
            set_condition(conditions, "AbleToScale", "True", "ReadyForNewScale",
                          "recommended size matches current size", stamp, update_time=False)
        status["desiredReplicas"] = desired
        status["conditions"] = sorted(conditions, key=lambda c: ("AbleToScale", "ScalingActive",
                                                                 "ScalingLimited").index(c["type"]))
        self._write(hpa, status)

    def _desired(self, hpa: dict, deployment: dict, current: int, low: int, high: int, conditions: list[dict],
                 now: float, stamp: str) -> tuple[int, str]:
        """(desired replicas, the rescale reason) — the real controller's reconcileAutoscaler."""
        if current == 0 and low != 0:
            set_condition(conditions, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero", stamp,
                          update_time=False)
            return 0, ""
        if current > high:
            return self._limited(high, low, high, conditions, stamp), "Current number of replicas above Spec.MaxReplicas"
        if current < low:
            return self._limited(low, low, high, conditions, stamp), "Current number of replicas below Spec.MinReplicas"
        utilization = simulated_utilization(deployment)
        if utilization is None:
            active = find_condition(conditions, "ScalingActive") or {}
            set_condition(conditions, "ScalingActive", "False", "FailedGetResourceMetric", _NO_METRICS, stamp,
                          update_time=False)
            if active.get("reason") != "FailedGetResourceMetric":  # once per outage, not once per tick
                events.record(self._store, hpa, events.WARNING, "FailedGetResourceMetric",
                              "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics "
                              "returned from resource metrics API", COMPONENT)
            return current, ""
        set_condition(conditions, "ScalingActive", "True", "ValidMetricFound",
                      f"the HPA was able to successfully calculate a replica count from {_CPU_METRIC}", stamp,
                      update_time=False)
        ratio = utilization / cpu_target(hpa["spec"])
        proposal = current if abs(ratio - 1) <= TOLERANCE else math.ceil(ratio * current)
        window = self._timing.seconds(DOWNSCALE_STABILIZATION_SECONDS)
        history = [(t, n) for t, n in self._recommendations.get(hpa["metadata"]["uid"], []) if now - t <= window]
        history.append((now, proposal))
        self._recommendations[hpa["metadata"]["uid"]] = history
        stabilized = max(n for _, n in history) if proposal < current else proposal
        desired = self._limited(stabilized, low, high, conditions, stamp)
        direction = "above" if desired > current else "below"
        if proposal < current and stabilized >= current:
            return current, "stabilized"
        return desired, f"{_CPU_METRIC} {direction} target"

    @staticmethod
    def _limited(desired: int, low: int, high: int, conditions: list[dict], stamp: str) -> int:
        if desired > high:
            set_condition(conditions, "ScalingLimited", "True", "TooManyReplicas",
                          "the desired replica count is more than the maximum replica count", stamp, update_time=False)
            return high
        if desired < low:
            set_condition(conditions, "ScalingLimited", "True", "TooFewReplicas",
                          "the desired replica count is less than the minimum replica count", stamp, update_time=False)
            return low
        set_condition(conditions, "ScalingLimited", "False", "DesiredWithinRange",
                      "the desired count is within the acceptable range", stamp, update_time=False)
        return desired

    def _write(self, hpa: dict, status: dict) -> None:
        self._store.set_status(r.HORIZONTALPODAUTOSCALERS, hpa, status)
