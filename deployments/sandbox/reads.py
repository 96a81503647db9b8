"""Reads as clients see them: lists (pages, Tables), gets (as Table too) and watches (chunked streams).

`app` routes GET requests here; the semantics live in `listing`, `watch` and
`tables`. A watch is served as a chunked `application/json` stream from the
request's own thread (the WSGI server is threaded), flushed line by line.
"""

from __future__ import annotations

import json
import select
from collections.abc import Callable, Mapping

from werkzeug.wrappers import Response

from . import tables
from .listing import list_options, list_page
from .resources import ResourceType
from .store import Store
from .watch import stream


def _json(body: object) -> Response:
    return Response(json.dumps(body), mimetype="application/json")


def client_gone(environ: Mapping) -> Callable[[], bool]:
    """Whether the watching client went away: it sends nothing while a response streams, so a readable
    connection means it was closed (or the client broke the protocol)."""
    connection = environ.get("werkzeug.socket")

    def gone() -> bool:
        if connection is None:
            return False
        try:
            return bool(select.select([connection], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    return gone


def is_watch(args: Mapping[str, str]) -> bool:
    return args.get("watch", "").lower() in ("true", "1")


class Reads:
    def __init__(self, store: Store, bookmark_interval: float) -> None:
        self._store = store
        self._bookmark_interval = bookmark_interval

    def list(self, args: Mapping[str, str], accept: str, resource: ResourceType, namespace: str | None) -> Response:
        options = list_options(args, resource)
        as_table = tables.wants_table(accept)
        include = tables.include_object(args.get("includeObject")) if as_table else ""
        items, metadata = list_page(self._store, resource, namespace, options)
        if as_table:
            return _json(tables.table(resource, items, metadata, include))
        return _json({"kind": f"{resource.kind}List", "apiVersion": resource.api_version, "metadata": metadata,
                      "items": items})

    def get(self, args: Mapping[str, str], accept: str, resource: ResourceType, namespace: str | None,
            name: str) -> Response:
        obj = self._store.get(resource, namespace, name)
        if tables.wants_table(accept):
            include = tables.include_object(args.get("includeObject"))
            return _json(tables.table(resource, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                                      include))
        return _json(obj)

    def watch(self, args: Mapping[str, str], accept: str, resource: ResourceType, namespace: str | None,
              name: str | None, environ: Mapping) -> Response:
        options = list_options(args, resource, name)
        if tables.wants_table(accept):
            include = tables.include_object(args.get("includeObject"))

            def render(obj: dict) -> dict:
                return tables.table(resource, [obj], {"resourceVersion": obj["metadata"]["resourceVersion"]},
                                    include)
        else:
            def render(obj: dict) -> dict:
                return obj
        lines = stream(self._store, resource, namespace, options, render, self._bookmark_interval,
                       client_gone(environ))
        return Response(lines, mimetype="application/json", direct_passthrough=True)
