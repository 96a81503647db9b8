"""`?watch=true` on every list endpoint: a stream of JSON lines `{"type", "object"}`, as the API server sends.

- Without `resourceVersion` (or with "0") the stream starts with an ADDED
  event per existing object, then follows changes; with a resourceVersion it
  sends the changes after it, from the store's history (see `events`). A
  version the history no longer holds is answered 200 with one ERROR event
  carrying a `410 Expired` Status (`too old resource version: 5 (120)`), which
  is what clients (kubectl's reflector, the Python client's `Watch`) expect.
- `sendInitialEvents=true` (with `resourceVersionMatch=NotOlderThan`) sends
  the current objects, then a BOOKMARK annotated `k8s.io/initial-events-end`.
- Label and field selectors filter the stream like the watch cache does: an
  object that stops matching is sent as DELETED, one that starts as ADDED.
- `allowWatchBookmarks=true` adds a BOOKMARK (kind, apiVersion and the
  resourceVersion to resume from) whenever the stream was quiet for
  `bookmark_interval` seconds; `timeoutSeconds` ends the stream (default:
  30 minutes, the server's minimum request timeout), and so does a client
  that went away (noticed within `bookmark_interval`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

from .errors import ApiError
from .events import Change
from .listing import ListOptions
from .resources import ResourceType
from .store import Store

INITIAL_EVENTS_END = "k8s.io/initial-events-end"

Render = Callable[[dict], dict]  # an object -> the object as sent (itself, or a Table of it)


def _line(kind: str, obj: dict) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def _bookmark(resource: ResourceType, resource_version: int, initial_end: bool = False) -> bytes:
    metadata: dict = {"resourceVersion": str(resource_version)}
    if initial_end:
        metadata["annotations"] = {INITIAL_EVENTS_END: "true"}
    return _line("BOOKMARK", {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": metadata})


def _event(change: Change, visible: Callable[[dict], bool]) -> tuple[str, dict] | None:
    """The event a filtered watch sends for `change`, if any."""
    was = change.previous is not None and visible(change.previous)
    if change.type == "DELETED":
        return ("DELETED", change.object) if was else None
    now = visible(change.object)
    if now:
        return ("MODIFIED" if was else "ADDED"), change.object
    return ("DELETED", change.object) if was else None


def stream(store: Store, resource: ResourceType, namespace: str | None, options: ListOptions, render: Render,
           bookmark_interval: float, client_gone: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
    """The watch's lines, until `options.timeout`, a sandbox reset, the server stopping or the client leaving
    (checked whenever the stream is woken, at least every `bookmark_interval`)."""
    history = store.history
    epoch = history.epoch
    deadline = time.monotonic() + options.timeout

    def visible(obj: dict) -> bool:
        return (namespace is None or obj["metadata"].get("namespace") == namespace) and options.matches(obj)

    def send(kind: str, obj: dict) -> bytes:
        return _line(kind, render(obj))

    yield b""  # the server sends the status line and headers now, as the API server does, not with the first event
    if options.send_initial_events or (options.resource_version in ("", "0") and
                                       options.send_initial_events is None):
        items, current = store.list(resource, namespace, options.matches)
        position = int(current)
        for obj in items:
            yield send("ADDED", obj)
        if options.send_initial_events and options.allow_bookmarks:
            yield _bookmark(resource, position, initial_end=True)
    else:
        position = int(options.resource_version or history.latest())
    quiet_since = time.monotonic()
    while True:
        try:
            changes, latest = history.since(position, resource)
        except ApiError as error:  # asked for (or fell behind to) a version no longer held
            yield _line("ERROR", error.status())
            return
        for change in changes:
            event = _event(change, visible)
            if event is not None:
                yield send(*event)
                quiet_since = time.monotonic()
        position = latest
        now = time.monotonic()
        if now >= deadline:
            return
        if options.allow_bookmarks and now - quiet_since >= bookmark_interval:
            yield _bookmark(resource, position)
            quiet_since = now
        if not history.wait(position, epoch, min(deadline - now, bookmark_interval)) or client_gone():
            return
