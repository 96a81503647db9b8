"""Status conditions as the controllers maintain them (`lastTransitionTime` moves only when the status flips)."""

from __future__ import annotations


def set_condition(conditions: list[dict], kind: str, status: str, reason: str, message: str, now: str, *,
                  touch: bool = False, update_time: bool = True) -> None:
    """Set condition `kind` in place; `touch` renews `lastUpdateTime` even when nothing else changes.

    `update_time` is False for kinds whose conditions have no `lastUpdateTime` (ReplicaSets, HPAs).
    """
    for condition in conditions:
        if condition["type"] == kind:
            changed = (condition["status"], condition.get("reason"), condition.get("message")) != (
                status, reason, message)
            if changed and condition["status"] != status:
                condition["lastTransitionTime"] = now
            if changed or touch:
                condition.update(status=status, reason=reason, message=message)
                if update_time:
                    condition["lastUpdateTime"] = now
            return
    condition = {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": now}
    if update_time:
        condition["lastUpdateTime"] = now
    conditions.append(condition)


def remove_condition(conditions: list[dict], kind: str) -> list[dict]:
    return [condition for condition in conditions if condition["type"] != kind]


def find_condition(conditions: list[dict], kind: str) -> dict | None:
    return next((condition for condition in conditions if condition["type"] == kind), None)
