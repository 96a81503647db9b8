"""The event recorder of the simulated controllers: what `kubectl describe` lists under "Events".

The real API server keeps one Event and serves it as `core/v1` (`involvedObject`,
`message`, `count`) and as `events.k8s.io/v1` (`regarding`, `note`, `series`).
The sandbox stores the two shapes side by side, written together here, under
the same name. A repeat of the same reason and message for the same object
counts up the existing event (`count`, `series.count`), as client-go's
aggregation does, instead of adding one per occurrence.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from . import resources as r
from .store import Store, timestamp

NORMAL, WARNING = "Normal", "Warning"


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _reference(obj: dict) -> dict:
    metadata = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "namespace": metadata.get("namespace", ""),
            "name": metadata["name"], "uid": metadata["uid"], "resourceVersion": metadata["resourceVersion"]}


def record(store: Store, obj: dict, kind: str, reason: str, message: str, component: str) -> None:
    """Record that `component` did `reason` to `obj` (kind Normal or Warning), in the object's namespace."""
    namespace = obj["metadata"]["namespace"]
    uid = obj["metadata"]["uid"]
    with store.atomic():
        earlier, _ = store.list(r.EVENTS, namespace, lambda event: (
            event["involvedObject"]["uid"], event["reason"], event["message"]) == (uid, reason, message))
        now, micro = timestamp(), _micro_time()
        if earlier:
            name, count = earlier[0]["metadata"]["name"], earlier[0]["count"] + 1
            store.update(r.EVENTS, namespace, name, lambda event: {**event, "count": count, "lastTimestamp": now})
            store.update(r.EVENTS_V1, namespace, name, lambda event: {
                **event, "series": {"count": count, "lastObservedTime": micro}, "deprecatedLastTimestamp": now,
                "deprecatedCount": count})
            return
        name = f"{obj['metadata']['name']}.{time.time_ns():x}"
        source = {"component": component}
        store.create(r.EVENTS, namespace, {
            "metadata": {"name": name, "namespace": namespace}, "involvedObject": _reference(obj),
            "reason": reason, "message": message, "type": kind, "source": source, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now, "reportingComponent": component,
            "reportingInstance": "slipway-sandbox",
        })
        store.create(r.EVENTS_V1, namespace, {
            "metadata": {"name": name, "namespace": namespace}, "regarding": _reference(obj),
            "reason": reason, "note": message, "type": kind, "action": reason, "eventTime": micro,
            "reportingController": component, "reportingInstance": "slipway-sandbox",
            "deprecatedSource": source, "deprecatedFirstTimestamp": now, "deprecatedLastTimestamp": now,
            "deprecatedCount": 1,
        })
