"""The WSGI application: Kubernetes REST routes over the store, plus `/sandbox/` controls.

Request handling mirrors the API server's order: injected faults first (they
simulate an overloaded or unreachable server), then bearer-token
authentication, then routing, decoding and the operation itself. Every
failure is answered with a `Status` object (see `errors`).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import yaml
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import openapi
from . import options as write_options
from . import resources as r
from .deletion import propagation_policy
from .errors import (
    ApiError,
    bad_request,
    field_manager_required,
    forbidden,
    internal_error,
    method_not_allowed,
    not_acceptable,
    path_not_found,
    unauthorized,
    unsupported_media_type,
)
from .faults import FaultInjector
from .fieldmanager import schema_of
from .patches import PATCH_TYPES, patched
from .pods import log_lines
from .reads import Reads, is_watch
from .resources import ResourceType
from .scale import rescaled, scale_of
from .store import Store

logger = logging.getLogger(__name__)

APPLY_PATCH = "application/apply-patch+yaml"
CONTROL_PREFIX = "/sandbox/"

VERSION_INFO = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-slipway-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_URLS = Map([
    Rule("/sandbox/faults", methods=["POST", "DELETE"], endpoint="control_faults"),
    Rule("/sandbox/reset", methods=["POST"], endpoint="control_reset"),
    Rule("/sandbox/state", methods=["GET"], endpoint="control_state"),
    Rule("/version", methods=["GET"], endpoint="version"),
    Rule("/openapi/v2", methods=["GET"], endpoint="openapi_v2"),
    Rule("/openapi/v3", methods=["GET"], endpoint="openapi_v3"),
    Rule("/openapi/v3/<path:group_path>", methods=["GET"], endpoint="openapi_v3"),
    Rule("/api", methods=["GET"], endpoint="core_versions"),
    Rule("/apis", methods=["GET"], endpoint="groups"),
    Rule("/api/<version>", methods=["GET"], endpoint="resource_list", defaults={"group": ""}),
    Rule("/apis/<group>/<version>", methods=["GET"], endpoint="resource_list"),
    Rule("/api/<version>/<path:rest>", endpoint="resources", defaults={"group": ""}),
    Rule("/apis/<group>/<version>/<path:rest>", endpoint="resources"),
], strict_slashes=False, merge_slashes=False)


Handler = Callable[[Request, "Target"], Response]


@dataclass(frozen=True)
class Target:
    """What a resource URL addresses."""

    resource: ResourceType
    namespace: str | None  # None: cluster-scoped, or a list across all namespaces
    name: str | None  # None: the collection
    subresource: str | None


def parse_target(group: str, version: str, rest: str) -> Target:
    """Resolve `[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]` (404 Status if nothing is there)."""
    segments = rest.strip("/").split("/")
    namespace = None
    if len(segments) >= 3 and segments[0] == "namespaces":
        # `namespaces/x/pods` is a namespaced collection; `namespaces/x/status` is a namespace's subresource.
        candidate = r.lookup(group, version, segments[2])
        if candidate is not None and candidate.namespaced:
            namespace, segments = segments[1], segments[2:]
    resource = r.lookup(group, version, segments[0])
    if resource is None or len(segments) > 3 or not all(segments):
        raise path_not_found()
    if resource.namespaced and namespace is None and len(segments) > 1:
        raise path_not_found()
    subresource = segments[2] if len(segments) == 3 else None
    if subresource is not None and subresource not in resource.subresources:
        raise path_not_found()
    return Target(resource, namespace, segments[1] if len(segments) > 1 else None, subresource)


def _json(body: object, code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=code, mimetype="application/json", headers=headers)


def _decode(request: Request, *, list_ok: bool = False) -> dict:
    """The request body as a dict (or a JSON patch's list): JSON, or YAML for apply patches (400 otherwise)."""
    data = request.get_data()
    try:
        body = yaml.safe_load(data) if request.mimetype == APPLY_PATCH else json.loads(data)
    except (ValueError, yaml.YAMLError) as error:
        raise bad_request(f"the request body could not be decoded: {error}") from error
    if not isinstance(body, dict) and not (list_ok and isinstance(body, list)):
        raise bad_request("the request body must be an object")
    return body


def _patch_request(request: Request) -> tuple[dict, str | None]:
    """A PATCH body and, for server-side apply, its field manager (415/422 for what cannot be taken)."""
    if request.mimetype == APPLY_PATCH:
        manager = request.args.get("fieldManager")
        if not manager:
            raise field_manager_required()
        return _decode(request), manager
    if request.mimetype in PATCH_TYPES:
        return _decode(request, list_ok=True), None
    raise unsupported_media_type(request.mimetype)


def _as_patch(request: Request) -> str:
    """Subresources take an apply patch as a merge patch of their view (a simplification)."""
    return "application/merge-patch+json" if request.mimetype == APPLY_PATCH else request.mimetype


def _optional_int(request: Request, name: str) -> int | None:
    value = request.args.get(name)
    if value is None:
        return None
    if not value.isdigit():
        raise bad_request(f"{name}: Invalid value: {value!r}: must be a non-negative integer")
    return int(value)


class SandboxApp:
    """WSGI callable serving the sandbox's API; `store` and `faults` are shared with the server."""

    def __init__(self, store: Store, faults: FaultInjector, token: str | None = None,
                 bookmark_interval: float = 5.0) -> None:
        self._store = store
        self._faults = faults
        self._token = token
        self._reads = Reads(store, bookmark_interval)
        # The last API requests, "verb path?query" (verb: get, watch, post, put, patch, delete), so tests
        # and benchmarks can see what a client asked for.
        self.requests: deque[str] = deque(maxlen=2000)
        # Handlers for one object (by subresource, then HTTP method).
        self._object_handlers: dict[str | None, dict[str, Handler]] = {
            None: {"GET": self._get, "PUT": self._replace, "PATCH": self._patch, "DELETE": self._delete},
            "status": {"GET": self._get, "PUT": self._replace_status, "PATCH": self._patch_status},
            "scale": {"GET": self._get_scale, "PUT": self._replace_scale, "PATCH": self._patch_scale},
            "log": {"GET": self._log},
        }

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except ApiError as error:
            response = _json(error.status(), error.code, error.headers)
        except Exception as error:  # answer like the API server would rather than dropping the connection
            logger.exception("sandbox: unexpected error handling %s %s", request.method, request.path)
            failure = internal_error(str(error))
            response = _json(failure.status(), failure.code)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            if not ipaddress.ip_address(request.remote_addr or "0.0.0.0").is_loopback:
                raise forbidden("the sandbox control endpoints only answer loopback clients")
        else:
            watching = request.method == "GET" and is_watch(request.args)
            fault = self._faults.take("WATCH" if watching else request.method)
            if fault is not None:
                raise fault
            self._authenticate(request)
            self.requests.append(f"{'watch' if watching else request.method.lower()} {request.full_path}")
        try:
            endpoint, args = _URLS.bind_to_environ(request.environ).match()
        except MethodNotAllowed as error:
            raise method_not_allowed(request.method) from error
        except HTTPException as error:
            raise path_not_found() from error
        return getattr(self, f"_{endpoint}")(request, **args)

    def _authenticate(self, request: Request) -> None:
        if self._token is None:
            return
        presented = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(presented, f"Bearer {self._token}".encode()):
            raise unauthorized()

    # Sandbox controls

    def _control_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self._faults.clear()
        else:
            body = _decode(request)
            self._faults.inject(str(body.get("mode")), body.get("count", 1), body.get("hang_seconds", 5.0),
                               body.get("method"))
        return _json({"fault": self._faults.describe()})

    def _control_reset(self, request: Request) -> Response:
        self._store.reset()
        self._faults.clear()
        return _json({"reset": True})

    def _control_state(self, request: Request) -> Response:
        verbs = Counter(line.split(" ", 1)[0] for line in list(self.requests))
        return _json({"resourceVersion": self._store.resource_version(), "objects": self._store.counts(),
                      "fault": self._faults.describe(), "requests": verbs})

    # Discovery

    def _version(self, request: Request) -> Response:
        return _json(VERSION_INFO)

    def _core_versions(self, request: Request) -> Response:
        return _json({"kind": "APIVersions", "versions": ["v1"],
                      "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]})

    def _groups(self, request: Request) -> Response:
        return _json(r.api_group_list())

    def _openapi_v2(self, request: Request) -> Response:
        if not openapi.accepts_json(request.headers.get("Accept", "")):
            raise not_acceptable()
        return Response(openapi.v2(), mimetype="application/json")

    def _openapi_v3(self, request: Request, group_path: str | None = None) -> Response:
        document = openapi.v3_root() if group_path is None else openapi.v3(group_path)
        if document is None:
            raise path_not_found()
        return Response(document, mimetype="application/json")

    def _resource_list(self, request: Request, group: str, version: str) -> Response:
        document = r.resource_list(group, version)
        if document is None:
            raise path_not_found()
        return _json(document)

    # Resources

    def _resources(self, request: Request, group: str, version: str, rest: str) -> Response:
        target = parse_target(group, version, rest)
        if request.method == "GET" and is_watch(request.args) and target.subresource is None:
            return self._reads.watch(request.args, request.headers.get("Accept", ""), target.resource,
                                     target.namespace, target.name, request.environ)
        handler = self._handler(target, request.method)
        if handler is None:
            raise method_not_allowed(request.method)
        options = write_options.from_request(request.args, request.headers.get("User-Agent", ""),
                                             target.subresource, applying=request.mimetype == APPLY_PATCH)
        with write_options.serving(options):
            response = handler(request, target)
        for warning in options.warnings:
            response.headers.add("Warning", f"299 - {json.dumps(warning)}")
        return response

    def _handler(self, target: Target, method: str) -> Handler | None:
        if target.name is not None:
            return self._object_handlers[target.subresource].get(method)
        if method == "GET":
            return self._list
        # Objects are created in a namespace, not in the all-namespaces collection.
        creatable = target.namespace is not None or not target.resource.namespaced
        return self._create if method == "POST" and creatable else None

    def _list(self, request: Request, target: Target) -> Response:
        return self._reads.list(request.args, request.headers.get("Accept", ""), target.resource, target.namespace)

    def _create(self, request: Request, target: Target) -> Response:
        return _json(self._store.create(target.resource, target.namespace, _decode(request)), 201)

    def _get(self, request: Request, target: Target) -> Response:
        if target.subresource is not None:  # /status: the object itself
            return _json(self._store.get(target.resource, target.namespace, target.name))
        return self._reads.get(request.args, request.headers.get("Accept", ""), target.resource, target.namespace,
                               target.name)

    def _replace(self, request: Request, target: Target) -> Response:
        body = _decode(request)
        return _json(self._store.update(target.resource, target.namespace, target.name, lambda current: body))

    def _patch(self, request: Request, target: Target) -> Response:
        body, manager = _patch_request(request)
        if manager is not None:
            obj, created = self._store.apply(target.resource, target.namespace, target.name, body, manager)
            return _json(obj, 201 if created else 200)

        def mutate(current: dict) -> dict:
            return patched(current, body, request.mimetype, schema_of(current))

        return _json(self._store.update(target.resource, target.namespace, target.name, mutate))

    def _delete(self, request: Request, target: Target) -> Response:
        if request.get_data():  # kubectl sends DeleteOptions in the body, dryRun included
            write_options.take_delete_options(_decode(request))
        obj = self._store.delete(target.resource, target.namespace, target.name, propagation_policy(request))
        if target.resource.returns_deleted_object or obj["metadata"].get("deletionTimestamp"):
            return _json(obj)
        details = {"name": target.name, "kind": target.resource.plural, "uid": obj["metadata"]["uid"]}
        if target.resource.group:
            details["group"] = target.resource.group
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})

    def _replace_status(self, request: Request, target: Target) -> Response:
        body = _decode(request)
        return _json(self._store.update(target.resource, target.namespace, target.name, lambda current: body,
                                        status_only=True))

    def _patch_status(self, request: Request, target: Target) -> Response:
        # Subresources take every patch type, apply included, as a merge patch of their view.
        patch, _ = _patch_request(request)
        return _json(self._store.update(target.resource, target.namespace, target.name,
                                        lambda current: patched(current, patch, _as_patch(request), schema_of(current)),
                                        status_only=True))

    def _get_scale(self, request: Request, target: Target) -> Response:
        return _json(scale_of(self._store.get(target.resource, target.namespace, target.name)))

    def _replace_scale(self, request: Request, target: Target) -> Response:
        scale = _decode(request)
        updated = self._store.update(target.resource, target.namespace, target.name,
                                     lambda current: rescaled(current, scale))
        return _json(scale_of(updated))

    def _patch_scale(self, request: Request, target: Target) -> Response:
        patch, _ = _patch_request(request)
        def mutate(current: dict) -> dict:
            scale = scale_of(current)
            return rescaled(current, patched(scale, patch, _as_patch(request), schema_of(scale)))

        updated = self._store.update(target.resource, target.namespace, target.name, mutate)
        return _json(scale_of(updated))

    def _log(self, request: Request, target: Target) -> Response:
        pod = self._store.get(target.resource, target.namespace, target.name)
        lines = log_lines(pod, request.args.get("container"))
        tail = _optional_int(request, "tailLines")
        if tail is not None:
            lines = lines[-tail:] if tail else []
        # text/plain: the official client refuses to decode application/octet-stream.
        return Response("".join(f"{line}\n" for line in lines), mimetype="text/plain")
