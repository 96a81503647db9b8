"""ResourceQuota: what an object charges against a namespace's quotas, and the admission check.

Pure functions over object dicts; the store calls `admit` under its lock for
every create (so two concurrent creates cannot both take the last slot) and the
controllers publish `status` (`hard` and `used`). Charged are the resource names
Slipway and kubectl users set: `pods`, `services`, `configmaps`, `secrets`,
`resourcequotas`, `count/<resource>[.<group>]`, and the pods' `cpu`/`memory`
(`requests.*` and the bare names) and `limits.*`. Pods in a terminal phase
(Succeeded, Failed) are not charged, as on a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity

from .errors import ApiError
from .resources import ResourceType

_COUNTED_CORE = ("pods", "services", "configmaps", "secrets", "resourcequotas")
_COMPUTE = {"requests.cpu": ("requests", "cpu"), "cpu": ("requests", "cpu"),
            "requests.memory": ("requests", "memory"), "memory": ("requests", "memory"),
            "limits.cpu": ("limits", "cpu"), "limits.memory": ("limits", "memory")}
_TERMINAL_PHASES = ("Succeeded", "Failed")
_BINARY_SUFFIXES = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def format_quantity(name: str, value: Decimal) -> str:
    """A quantity as the API server prints it: `500m`, `2`, `256Mi` for memory."""
    if value != value.to_integral_value():
        return f"{int(value * 1000)}m"
    if name.endswith("memory") and value:
        for suffix, size in _BINARY_SUFFIXES:
            if value % size == 0:
                return f"{int(value // size)}{suffix}"
    return str(int(value))


def _pod_compute(pod: dict, section: str, resource: str) -> Decimal | None:
    """The pod's total request or limit of cpu/memory; None when a container leaves it unset."""
    total = Decimal(0)
    for container in (pod.get("spec") or {}).get("containers") or []:
        value = ((container.get("resources") or {}).get(section) or {}).get(resource)
        if value is None:
            return None
        total += parse_quantity(value)
    return total


def charges(resource: ResourceType, obj: dict, names: Iterable[str]) -> dict[str, Decimal | None]:
    """What `obj` charges for each quota resource in `names` (None: it must say, and does not)."""
    if resource.plural == "pods" and (obj.get("status") or {}).get("phase") in _TERMINAL_PHASES:
        return {}
    charged: dict[str, Decimal | None] = {}
    for name in names:
        if name == f"count/{resource.qualified_resource}" or (not resource.group and name == resource.plural
                                                             and name in _COUNTED_CORE):
            charged[name] = Decimal(1)
        elif name in _COMPUTE and resource.plural == "pods" and not resource.group:
            charged[name] = _pod_compute(obj, *_COMPUTE[name])
    return charged


def usage(quota: dict, objects: Iterable[tuple[ResourceType, dict]]) -> dict[str, Decimal]:
    """Each hard resource of `quota` summed over the namespace's `objects`."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    used = {name: Decimal(0) for name in hard}
    for resource, obj in objects:
        for name, amount in charges(resource, obj, hard).items():
            used[name] += amount or 0
    return used


def status(quota: dict, objects: Iterable[tuple[ResourceType, dict]]) -> dict:
    """The quota's `status`: its `hard` limits and what the namespace `used` of them."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    used = usage(quota, objects)
    return {"hard": dict(hard), "used": {name: format_quantity(name, used[name]) for name in hard}}


def _listing(values: dict[str, Decimal]) -> str:
    return ",".join(f"{name}={format_quantity(name, value)}" for name, value in sorted(values.items()))


def admit(resource: ResourceType, obj: dict, quotas: Iterable[dict],
          objects: list[tuple[ResourceType, dict]]) -> None:
    """403 Forbidden, worded as the quota admission plugin does, if `obj` would exceed a quota."""
    name = obj["metadata"]["name"]
    for quota in quotas:
        hard = {key: parse_quantity(value) for key, value in ((quota.get("spec") or {}).get("hard") or {}).items()}
        requested = charges(resource, obj, hard)
        quota_name = quota["metadata"]["name"]
        missing = sorted(key for key, amount in requested.items() if amount is None)
        if missing:
            raise _forbidden(resource, name, f"failed quota: {quota_name}: must specify {','.join(missing)}")
        used = usage(quota, objects)
        exceeded = sorted(key for key, amount in requested.items() if used[key] + amount > hard[key])
        if exceeded:
            raise _forbidden(resource, name, (
                f"exceeded quota: {quota_name}, requested: {_listing({k: requested[k] for k in exceeded})}, "
                f"used: {_listing({k: used[k] for k in exceeded})}, limited: {_listing({k: hard[k] for k in exceeded})}"))


def _forbidden(resource: ResourceType, name: str, reason: str) -> ApiError:
    details = {"name": name, "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    return ApiError(403, "Forbidden", f'{resource.qualified_resource} "{name}" is forbidden: {reason}',
                    details=details)
