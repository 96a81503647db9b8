"""The store's change history: what watches stream and what old lists and continue tokens read.

Every write bumps the global resourceVersion by one and records one event
(ADDED, MODIFIED or DELETED) with the object after the write and before it.
The history is bounded, like the API server's watch cache (and etcd's
compaction): once an event is dropped, reading from a resourceVersion before
it is `410 Gone` with reason `Expired`, worded as the watch cache words it.
The store calls `record` while it holds its own lock (lock order: store, then
history); readers take only the history's lock.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from dataclasses import dataclass

from .errors import ApiError
from .resources import ResourceType

Key = tuple[str, str]  # (namespace or "", name)


@dataclass(frozen=True)
class Change:
    resource_version: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: ResourceType
    key: Key
    object: dict  # after the write (for DELETED: as it was, at the deletion's resourceVersion)
    previous: dict | None  # before the write (None for ADDED)


def too_old(resource_version: int, oldest: int) -> ApiError:
    """410 Expired, as the watch cache answers a resourceVersion it no longer holds."""
    return ApiError(410, "Expired", f"too old resource version: {resource_version} ({oldest})")


class History:
    """A bounded, thread-safe log of changes that readers can wait on."""

    def __init__(self, capacity: int) -> None:
        self._changes: deque[Change] = deque(maxlen=capacity)
        self._condition = threading.Condition()
        self._floor = 0  # the newest resourceVersion whose change is no longer held
        self._latest = 0
        self._epoch = 0  # bumped by `restart` and `close`: open watches end
        self._closed = False

    def record(self, resource_version: int, kind: str, resource: ResourceType, key: Key, obj: dict,
               previous: dict | None) -> None:
        with self._condition:
            if len(self._changes) == self._changes.maxlen:
                self._floor = self._changes[0].resource_version
            self._changes.append(Change(resource_version, kind, resource, key, copy.deepcopy(obj),
                                        copy.deepcopy(previous)))
            self._latest = resource_version
            self._condition.notify_all()

    def restart(self, resource_version: int) -> None:
        """Forget everything up to `resource_version` (the sandbox was reset): older reads are 410."""
        with self._condition:
            self._changes.clear()
            self._floor = self._latest = resource_version
            self._epoch += 1
            self._condition.notify_all()

    def close(self) -> None:
        """End every open watch now and from now on (the server is stopping)."""
        with self._condition:
            self._closed = True
            self._epoch += 1
            self._condition.notify_all()

    @property
    def epoch(self) -> int:
        with self._condition:
            return self._epoch

    def since(self, resource_version: int, resource: ResourceType) -> tuple[list[Change], int]:
        """The changes of `resource` after `resource_version`, oldest first (410 if some are gone),
        and the newest resourceVersion they were read at."""
        with self._condition:
            self._require(resource_version)
            changes = [c for c in self._changes if c.resource_version > resource_version and c.resource is resource]
            return changes, self._latest

    def wait(self, resource_version: int, epoch: int, timeout: float) -> bool:
        """Block until a change newer than `resource_version` is recorded or `timeout` passes.

        False when watches must end (reset or shutdown since `epoch`).
        """
        with self._condition:
            self._condition.wait_for(
                lambda: self._latest > resource_version or self._epoch != epoch, timeout)
            return self._epoch == epoch and not self._closed

    def latest(self) -> int:
        with self._condition:
            return self._latest

    def _require(self, resource_version: int) -> None:
        if resource_version < self._floor:
            raise too_old(resource_version, self._floor)


def rewind(objects: dict[Key, dict], changes: list[Change]) -> dict[Key, dict]:
    """The objects as they were before `changes` (oldest first) were made: undo them newest first."""
    state = dict(objects)
    for change in reversed(changes):
        if change.previous is None:
            state.pop(change.key, None)
        else:
            state[change.key] = change.previous
    return state
