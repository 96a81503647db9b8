"""Simulated Jobs: each runs `rollout_delay` seconds, then completes (or, with a `-broken` image, fails).

No pods are made for them (nothing runs in the sandbox anyway); the Job's status goes the way the
real Job controller writes it for a one-pod Job: `startTime` and `active: 1`, then `succeeded: 1`,
`completionTime` and the `SuccessCriteriaMet` and `Complete` conditions — or, for a broken image,
`failed` and the `FailureTarget`/`Failed` conditions with reason `BackoffLimitExceeded`.
"""

from __future__ import annotations

from . import pods as p
from . import resources as r
from .store import Store, timestamp


def _condition(kind: str, reason: str, message: str, now: str) -> dict:
    return {"type": kind, "status": "True", "reason": reason, "message": message,
            "lastProbeTime": now, "lastTransitionTime": now}


def _finished(job: dict, now: str) -> dict:
    status = dict(job.get("status") or {})
    status.pop("active", None)
    containers = job["spec"]["template"]["spec"].get("containers") or []
    if any(p.is_broken_image(container.get("image", "")) for container in containers):
        status["failed"] = job["spec"].get("backoffLimit", 6) + 1
        status["conditions"] = [
            _condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit", now),
            _condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", now),
        ]
    else:
        status.update(succeeded=job["spec"].get("completions", 1), completionTime=now)
        status["conditions"] = [
            _condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", now),
            _condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods", now),
        ]
    return status


class JobRunner:
    """Advances every Job's status; the rollout controller calls `reconcile_all(now)` on each tick."""

    def __init__(self, store: Store, run_seconds: float) -> None:
        self._store = store
        self._run_seconds = run_seconds
        self._started: dict[str, float] = {}  # by Job uid, time.monotonic() when first seen

    def reconcile_all(self, now: float) -> None:
        jobs, _ = self._store.list(r.JOBS, None)
        self._started = {job["metadata"]["uid"]: self._started.get(job["metadata"]["uid"], now) for job in jobs}
        for job in jobs:
            status = job.get("status") or {}
            if status.get("conditions"):
                continue  # finished: a Job never runs again
            if not status.get("startTime"):
                status = {"startTime": timestamp(), "active": 1}
            elif now - self._started[job["metadata"]["uid"]] >= self._run_seconds:
                status = _finished(job, timestamp())
            else:
                continue
            metadata = job["metadata"]
            self._store.update(r.JOBS, metadata["namespace"], metadata["name"],
                               lambda current, status=status: {**current, "status": status}, status_only=True)
