"""The sandbox's object store: every API object, in memory, behind one lock.

It implements the storage semantics clients can observe on a real API server:
a global, monotonically increasing `resourceVersion` bumped by every write (and
left alone by writes that change nothing), `uid` and `creationTimestamp`,
`generation` counting spec changes, optimistic concurrency on
`metadata.resourceVersion`, namespaces that must exist before objects are
created in them, and cascading deletion through `ownerReferences` and
namespaces (immediate: there is no Terminating phase), and ResourceQuota
admission on every create (see `quota`).

Deletion follows `propagationPolicy` as the garbage collector does: `Background`
(the default) removes the object and then, at once rather than eventually,
what it owns; `Orphan` removes the object and strips its ownerReference from
its dependents; `Foreground` marks the object (`deletionTimestamp` and the
`foregroundDeletion` finalizer) and `collect_garbage` removes its dependents,
then it. An object with other finalizers stays, marked, until they are removed.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from . import fieldmanager, options, quota
from . import resources as r
from .admission import apply_defaults, check_identity, initial_status, validate
from .errors import already_exists, bad_request, conflict, not_found
from .events import History, rewind
from .resources import RESOURCE_TYPES, ResourceType

logger = logging.getLogger(__name__)

Mutation = Callable[[dict], dict]
# Metadata the server owns: whatever a client sends for these is ignored on update.
_SERVER_METADATA = ("name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp",
                    "deletionGracePeriodSeconds")
PROPAGATION_POLICIES = ("Foreground", "Background", "Orphan")
FOREGROUND_FINALIZER = "foregroundDeletion"
_DEFAULT_NAMESPACES = ("default", "kube-system")


def timestamp() -> str:
    """Now, in the RFC 3339 form Kubernetes uses (`2024-05-01T12:00:00Z`)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Store:
    """Thread-safe storage for API objects; every public method is atomic.

    Objects are stored and returned as plain dicts in their JSON form (with
    `kind` and `apiVersion`); callers always get copies.
    """

    def __init__(self, history: int = 1000) -> None:
        # Re-entrant so the controller can hold it across several calls (see `atomic`).
        self._lock = threading.RLock()
        self._objects: dict[ResourceType, dict[tuple[str, str], dict]] = {}
        self._resource_version = 0  # never reset: clients may still hold old versions
        self.history = History(history)  # the last `history` changes, for watches (see `events`)
        self.reset()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Hold the lock so a sequence of calls sees and leaves a consistent state."""
        with self._lock:
            yield

    def reset(self) -> None:
        """Forget every object and recreate the namespaces a fresh cluster has."""
        with self._lock:
            self._objects = {resource: {} for resource in RESOURCE_TYPES}
            self.history.restart(self._resource_version)
            for name in _DEFAULT_NAMESPACES:
                self._insert(r.NAMESPACES, None, {"metadata": {"name": name}})

    def resource_version(self) -> str:
        with self._lock:
            return str(self._resource_version)

    def counts(self) -> dict[str, int]:
        """Number of objects per resource, for the sandbox's state endpoint."""
        with self._lock:
            return {resource.qualified_resource: len(table) for resource, table in self._objects.items()}

    def get(self, resource: ResourceType, namespace: str | None, name: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._lookup(resource, namespace, name))

    def list(self, resource: ResourceType, namespace: str | None,
             predicate: Callable[[dict], bool] = lambda obj: True) -> tuple[list[dict], str]:
        """Matching objects of one namespace (or all, for None), with the list's resourceVersion.

        Like the real server, listing a namespace that does not exist is not an error.
        """
        with self._lock:
            items = [
                copy.deepcopy(obj)
                for (obj_namespace, _), obj in sorted(self._objects[resource].items())
                if (namespace is None or obj_namespace == namespace) and predicate(obj)
            ]
            return items, str(self._resource_version)

    def list_at(self, resource: ResourceType, namespace: str | None, resource_version: int,
                predicate: Callable[[dict], bool] = lambda obj: True) -> list[dict]:
        """Like `list`, as the objects were at `resource_version` (410 Expired once history no longer reaches it)."""
        with self._lock:
            changes, _ = self.history.since(resource_version, resource)
            state = rewind(self._objects[resource], changes)
            return [
                copy.deepcopy(obj) for (obj_namespace, _), obj in sorted(state.items())
                if (namespace is None or obj_namespace == namespace) and predicate(obj)
            ]

    def create(self, resource: ResourceType, namespace: str | None, body: dict) -> dict:
        check_identity(resource, body, None, namespace)
        with self._lock:
            self._require_namespace(resource, namespace)
            return self._insert(resource, namespace, copy.deepcopy(body))

    def update(self, resource: ResourceType, namespace: str | None, name: str, mutate: Mutation, *,
               status_only: bool = False) -> dict:
        """Write `mutate(current)` over the stored object (PUT and every PATCH flavour).

        A `metadata.resourceVersion` in the result is a precondition (409 Conflict
        when stale). With `status_only` just the status is taken from it, as for
        the `/status` subresource; otherwise its status is ignored for kinds that
        have a status subresource.
        """
        with self._lock:
            current = self._lookup(resource, namespace, name)
            return self._commit(resource, current, mutate(copy.deepcopy(current)), status_only=status_only)

    def apply(self, resource: ResourceType, namespace: str | None, name: str, config: dict,
              manager: str) -> tuple[dict, bool]:
        """Server-side apply of `config` by field manager `manager`; returns (object, created)."""
        if not config.get("apiVersion") or not config.get("kind"):
            raise bad_request("invalid object: apiVersion and kind must be set in an apply configuration")
        check_identity(resource, config, name, namespace)
        with self._lock:
            self._require_namespace(resource, namespace)
            current = self._objects[resource].get((namespace or "", name))
            force = options.current().force
            if current is None:
                skeleton = {"metadata": {"name": name}}
                applied = fieldmanager.apply(skeleton, config, manager, force=force, now=timestamp())
                return self._insert(resource, namespace, applied, track=False), True
            applied = fieldmanager.apply(current, config, manager, force=force, now=timestamp())
            return self._commit(resource, current, applied, track=False), False

    def delete(self, resource: ResourceType, namespace: str | None, name: str,
               propagation: str = "Background") -> dict:
        """Delete an object and its dependents by `propagation` (see the module docstring); returns it.

        The object returned carries a `deletionTimestamp` when it is not gone yet.
        """
        with self._lock:
            obj = self._lookup(resource, namespace, name)
            if options.current().dry_run:
                return copy.deepcopy(obj)
            if obj["metadata"].get("deletionTimestamp"):
                return copy.deepcopy(obj)
            dependents = self._dependents(resource, obj)
            if propagation == "Orphan" and resource is not r.NAMESPACES:
                for dependent_resource, dependent in dependents:
                    self._commit(dependent_resource, dependent, _disowned(dependent, obj["metadata"]["uid"]))
            finalizers = list(obj["metadata"].get("finalizers") or [])
            if propagation == "Foreground" and dependents and resource is not r.NAMESPACES:
                finalizers.append(FOREGROUND_FINALIZER)
            if finalizers:
                marked = copy.deepcopy(obj)
                marked["metadata"].update(deletionTimestamp=timestamp(), deletionGracePeriodSeconds=0,
                                          finalizers=finalizers)
                return self._commit(resource, obj, marked, marking=True)
            self._remove(resource, obj)
            return copy.deepcopy(obj)

    def each(self, resource: ResourceType, reconcile: Callable[[dict], None]) -> set[str]:
        """Call `reconcile` with the current copy of every `resource` object, each under the lock; returns their uids.

        For the controllers: one object's reconcile is atomic to API requests, an
        object deleted since the listing is skipped, and one whose reconcile fails
        is logged and does not hold up the others.
        """
        with self._lock:
            keys = list(self._objects[resource])
        uids = set()
        for key in keys:
            with self._lock:
                current = self._objects[resource].get(key)
                if current is not None:
                    uids.add(current["metadata"]["uid"])
                    try:
                        reconcile(copy.deepcopy(current))
                    except Exception:  # keep simulating: one bad object must not stop every controller
                        logger.exception("sandbox: reconciling %s %s/%s failed", resource.kind, *key)
        return uids

    def set_status(self, resource: ResourceType, obj: dict, status: dict) -> dict:
        """Write `status` through the status subresource of `obj`, unless it has that status already."""
        if obj.get("status") == status:
            return obj
        metadata = obj["metadata"]
        return self.update(resource, metadata.get("namespace"), metadata["name"],
                           lambda current: {**current, "status": status}, status_only=True)

    def collect_garbage(self) -> None:
        """One pass of the garbage collector over objects deleted in the foreground."""
        with self._lock:
            for resource, table in self._objects.items():
                for obj in list(table.values()):
                    if FOREGROUND_FINALIZER in (obj["metadata"].get("finalizers") or []):
                        self._collect(resource, obj)

    def _collect(self, resource: ResourceType, obj: dict) -> None:
        dependents = self._dependents(resource, obj)
        for dependent_resource, dependent in dependents:
            if not dependent["metadata"].get("deletionTimestamp"):
                metadata = dependent["metadata"]
                self.delete(dependent_resource, metadata.get("namespace"), metadata["name"], "Foreground")
        if not dependents:
            done = copy.deepcopy(obj)
            done["metadata"]["finalizers"] = [
                f for f in obj["metadata"]["finalizers"] if f != FOREGROUND_FINALIZER]
            self._commit(resource, obj, done)

    # Internal helpers: callers hold the lock.

    def _bump_resource_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def _lookup(self, resource: ResourceType, namespace: str | None, name: str) -> dict:
        obj = self._objects[resource].get((namespace or "", name))
        if obj is None:
            raise not_found(resource, name)
        return obj

    def _require_namespace(self, resource: ResourceType, namespace: str | None) -> None:
        if resource.namespaced and ("", namespace) not in self._objects[r.NAMESPACES]:
            raise not_found(r.NAMESPACES, namespace or "")

    def _insert(self, resource: ResourceType, namespace: str | None, obj: dict, *, track: bool = True) -> dict:
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        metadata = obj.setdefault("metadata", {})
        metadata.pop("resourceVersion", None)
        metadata.update(uid=str(uuid.uuid4()), creationTimestamp=timestamp())
        if resource.namespaced:
            metadata["namespace"] = namespace
        if resource.tracks_generation:
            metadata["generation"] = 1
        if resource.has_status:
            obj["status"] = initial_status(resource)
        apply_defaults(resource, obj, None)
        validate(resource, obj, None)
        key = (namespace or "", metadata["name"])
        if key in self._objects[resource]:
            raise already_exists(resource, metadata["name"])
        if namespace is not None:
            self._admit_quota(resource, namespace, obj)
        request = options.current()
        if track and request.manager:
            fieldmanager.record_update(None, obj, request.manager, metadata["creationTimestamp"])
        if request.dry_run:
            return copy.deepcopy(obj)
        metadata["resourceVersion"] = self._bump_resource_version()
        self._objects[resource][key] = obj
        self.history.record(self._resource_version, "ADDED", resource, key, obj, None)
        return copy.deepcopy(obj)

    def _admit_quota(self, resource: ResourceType, namespace: str, obj: dict) -> None:
        quotas = [q for (ns, _), q in self._objects[r.RESOURCEQUOTAS].items() if ns == namespace]
        if quotas:
            quota.admit(resource, obj, quotas, self._in_namespace(namespace))

    def _in_namespace(self, namespace: str) -> list[tuple[ResourceType, dict]]:
        return [(resource, obj) for resource, table in self._objects.items()
                for (ns, _), obj in table.items() if ns == namespace]

    def namespace_contents(self, namespace: str) -> list[tuple[ResourceType, dict]]:
        """Every object in `namespace` (copies), for the controllers' quota accounting."""
        with self._lock:
            return [(resource, copy.deepcopy(obj)) for resource, obj in self._in_namespace(namespace)]

    def _commit(self, resource: ResourceType, current: dict, desired: dict, *, status_only: bool = False,
                track: bool = True, marking: bool = False) -> dict:
        """Store `desired` in place of `current` unless that changes nothing (see `update`).

        Once an object is marked for deletion (`marking` does that), its last
        finalizer's removal removes it.
        """
        metadata = current["metadata"]
        check_identity(resource, desired, metadata["name"], metadata.get("namespace"))
        expected = (desired.get("metadata") or {}).get("resourceVersion")
        if expected and expected != metadata["resourceVersion"]:
            raise conflict(resource, metadata["name"])

        if status_only:
            new = {**copy.deepcopy(current), "status": desired.get("status") or {}}
        else:
            new = self._with_server_fields(resource, current, desired)
            apply_defaults(resource, new, current)
            validate(resource, new, current)
            request = options.current()
            # A client sending managedFields other than the stored ones sets them itself (an empty list clears).
            sent = (desired.get("metadata") or {}).get("managedFields", metadata.get("managedFields"))
            if track and request.manager and sent == metadata.get("managedFields"):
                fieldmanager.record_update(current, new, request.manager, timestamp(), request.subresource)
        if marking:
            new["metadata"].update({key: desired["metadata"][key] for key in
                                    ("deletionTimestamp", "deletionGracePeriodSeconds", "finalizers")})
        if _canonical(new) == _canonical(current):
            return copy.deepcopy(current)
        if resource.tracks_generation and _canonical(new.get("spec")) != _canonical(current.get("spec")):
            new["metadata"]["generation"] = metadata["generation"] + 1
        if options.current().dry_run:
            return copy.deepcopy(new)
        new["metadata"]["resourceVersion"] = self._bump_resource_version()
        key = (metadata.get("namespace") or "", metadata["name"])
        self._objects[resource][key] = new
        self.history.record(self._resource_version, "MODIFIED", resource, key, new, current)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._remove(resource, new)
        return copy.deepcopy(new)

    @staticmethod
    def _with_server_fields(resource: ResourceType, current: dict, desired: dict) -> dict:
        """`desired` with the identity, bookkeeping and (if a subresource owns it) status of `current`."""
        new = copy.deepcopy(desired)
        new["apiVersion"], new["kind"] = resource.api_version, resource.kind
        new_metadata = new.setdefault("metadata", {})
        for key in _SERVER_METADATA:
            if key in current["metadata"]:
                new_metadata[key] = current["metadata"][key]
        new_metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        if "managedFields" not in new_metadata and "managedFields" in current["metadata"]:
            new_metadata["managedFields"] = current["metadata"]["managedFields"]
        if resource.has_status:
            new["status"] = copy.deepcopy(current["status"])
        return new

    def _remove(self, resource: ResourceType, obj: dict) -> None:
        metadata = obj["metadata"]
        key = (metadata.get("namespace") or "", metadata["name"])
        if self._objects[resource].pop(key, None) is None:
            return  # already removed as a dependent of something removed earlier
        gone = {**obj, "metadata": {**metadata, "resourceVersion": self._bump_resource_version()}}
        self.history.record(self._resource_version, "DELETED", resource, key, gone, obj)
        for dependent_resource, dependent in self._dependents(resource, obj):
            self._remove(dependent_resource, dependent)

    def _dependents(self, resource: ResourceType, obj: dict) -> list[tuple[ResourceType, dict]]:
        """Objects deleted along with `obj`: its namespace's contents, or what it owns."""
        uid, name = obj["metadata"]["uid"], obj["metadata"]["name"]
        found = []
        for other_resource, table in self._objects.items():
            for (namespace, _), other in table.items():
                owners = other["metadata"].get("ownerReferences") or []
                in_namespace = resource is r.NAMESPACES and namespace == name
                if in_namespace or any(owner.get("uid") == uid for owner in owners):
                    found.append((other_resource, other))
        return found


def _disowned(obj: dict, owner_uid: str) -> dict:
    """`obj` without its ownerReference to `owner_uid` (an orphaned dependent)."""
    result = copy.deepcopy(obj)
    owners = [owner for owner in result["metadata"].get("ownerReferences") or [] if owner.get("uid") != owner_uid]
    if owners:
        result["metadata"]["ownerReferences"] = owners
    else:
        result["metadata"].pop("ownerReferences", None)
    return result
