"""List options as the API server reads them: selectors, resourceVersion(Match), pagination, watch flags.

Pagination: `limit` cuts a list into pages; `metadata.continue` is an opaque
token (base64 of the list's resourceVersion and the key to start after, as the
real server encodes it) and every page is read at the first page's
resourceVersion, so a paged list is consistent even while objects change.
A token whose resourceVersion the history no longer reaches is `410 Expired`
with the real server's message; `metadata.remainingItemCount` is set when the
list has no selector, as on the real server.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import ApiError, bad_request
from .resources import ResourceType
from .selectors import field_selector, label_selector
from .store import Store

CONTINUE_VERSION = "meta.k8s.io/v1"
EXACT, NOT_OLDER_THAN = "Exact", "NotOlderThan"
CONTINUE_EXPIRED = ("The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter.")
DEFAULT_WATCH_TIMEOUT = 1800.0  # the API server's --min-request-timeout


def invalid_options(causes: list[tuple[str, str]]) -> ApiError:
    """422 on ListOptions, as the API server reports invalid list/watch query parameters."""
    rendered = [f"{field}: {message}" for field, message in causes]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    return ApiError(422, "Invalid", f'ListOptions.meta.k8s.io "" is invalid: {summary}', details={
        "group": "meta.k8s.io", "kind": "ListOptions",
        "causes": [{"reason": "FieldValueForbidden" if message.startswith("Forbidden") else "FieldValueNotSupported",
                    "message": message, "field": field} for field, message in causes]})


def _boolean(args: Mapping[str, str], name: str) -> bool | None:
    value = args.get(name)
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0", ""):
        return False
    raise bad_request(f'{name}: Invalid value: "{value}": must be a boolean')


def _non_negative(args: Mapping[str, str], name: str) -> int | None:
    value = args.get(name)
    if value in (None, ""):
        return None
    if not value.isdigit():
        raise bad_request(f'{name}: Invalid value: "{value}": must be a non-negative integer')
    return int(value)


@dataclass(frozen=True)
class ListOptions:
    matches: Callable[[dict], bool]
    has_selector: bool
    resource_version: str
    match: str
    limit: int | None
    continue_token: str
    watch: bool
    allow_bookmarks: bool
    send_initial_events: bool | None
    timeout: float


def list_options(args: Mapping[str, str], resource: ResourceType, name: str | None = None) -> ListOptions:
    """Parse and validate a list or watch request's query (400/422 with the real server's wording)."""
    predicates = []
    if args.get("labelSelector"):
        predicates.append(label_selector(args["labelSelector"]))
    if args.get("fieldSelector"):
        predicates.append(field_selector(args["fieldSelector"], resource.kind))
    if name is not None:  # a watch on one object's URL
        predicates.append(lambda obj: obj["metadata"]["name"] == name)
    watch = bool(_boolean(args, "watch"))
    send_initial = _boolean(args, "sendInitialEvents")
    resource_version, match = args.get("resourceVersion", ""), args.get("resourceVersionMatch", "")
    if resource_version not in ("", "0") and not resource_version.isdigit():
        raise bad_request(f'Invalid value: "{resource_version}": resourceVersion must be a non-negative integer')
    continue_token = args.get("continue", "")

    causes: list[tuple[str, str]] = []
    if watch:
        if send_initial is not None and match != NOT_OLDER_THAN:
            causes.append(("resourceVersionMatch", "Forbidden: sendInitialEvents requires setting "
                                                   f"resourceVersionMatch to {NOT_OLDER_THAN}"))
        if match:
            if send_initial is None:
                causes.append(("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden for watch "
                                                       "unless sendInitialEvents is provided"))
            if match != NOT_OLDER_THAN:
                causes.append(("resourceVersionMatch", f'Unsupported value: "{match}": supported values: '
                                                       f'"{NOT_OLDER_THAN}"'))
    else:
        if match:
            if not resource_version:
                causes.append(("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden unless "
                                                       "resourceVersion is provided"))
            if continue_token:
                causes.append(("resourceVersionMatch", "Forbidden: resourceVersionMatch is forbidden when "
                                                       "continue is provided"))
            if match not in (EXACT, NOT_OLDER_THAN):
                causes.append(("resourceVersionMatch", f'Unsupported value: "{match}": supported values: '
                                                       f'"{EXACT}", "{NOT_OLDER_THAN}", ""'))
            if match == EXACT and resource_version == "0":
                causes.append(("resourceVersionMatch", 'Forbidden: resourceVersionMatch "exact" is forbidden '
                                                       'for resourceVersion "0"'))
        if send_initial is not None:
            causes.append(("sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for list"))
    if causes:
        raise invalid_options(causes)
    if continue_token and resource_version not in ("", "0"):
        raise bad_request("specifying resource version is not allowed when using continue")
    timeout = _non_negative(args, "timeoutSeconds")
    return ListOptions(
        matches=lambda obj: all(predicate(obj) for predicate in predicates), has_selector=bool(predicates),
        resource_version=resource_version, match=match, limit=_non_negative(args, "limit") or None,
        continue_token=continue_token, watch=watch, allow_bookmarks=bool(_boolean(args, "allowWatchBookmarks")),
        send_initial_events=send_initial, timeout=float(timeout) if timeout else DEFAULT_WATCH_TIMEOUT,
    )


def _encode_continue(resource_version: int, last: dict) -> str:
    metadata = last["metadata"]
    start = f"{metadata.get('namespace', '')}/{metadata['name']}\x00"
    token = json.dumps({"v": CONTINUE_VERSION, "rv": resource_version, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        namespace, name = decoded["start"].rstrip("\x00").split("/", 1)
        version, resource_version = decoded["v"], decoded["rv"]
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        raise bad_request("invalid continue token: continue key is not valid") from None
    if version != CONTINUE_VERSION or not isinstance(resource_version, int) or resource_version < 1:
        raise bad_request("invalid continue token: continue key is not valid: incorrect encoded start "
                          f"resourceVersion (version {CONTINUE_VERSION})")
    return resource_version, (namespace, name)


def _key(obj: dict) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _too_large(requested: int, current: int) -> ApiError:
    return ApiError(504, "Timeout", f"Too large resource version: {requested}, current: {current}",
                    details={"causes": [{"reason": "ResourceVersionTooLarge",
                                         "message": "Too large resource version"}], "retryAfterSeconds": 1})


def list_page(store: Store, resource: ResourceType, namespace: str | None,
              options: ListOptions) -> tuple[list[dict], dict]:
    """The items of one page and the list's metadata (resourceVersion, continue, remainingItemCount)."""
    if options.continue_token:
        resource_version, start = _decode_continue(options.continue_token)
        try:
            items = store.list_at(resource, namespace, resource_version, options.matches)
        except ApiError as error:
            if error.code == 410:
                raise ApiError(410, "Expired", CONTINUE_EXPIRED) from None
            raise
        items = [obj for obj in items if _key(obj) > start]
    else:
        items, current = store.list(resource, namespace, options.matches)
        resource_version = int(current)
        requested = int(options.resource_version or 0)
        if requested > resource_version:
            raise _too_large(requested, resource_version)
        exact = options.match == EXACT or (options.match == "" and options.limit and requested > 0)
        if exact and requested < resource_version:
            items, resource_version = store.list_at(resource, namespace, requested, options.matches), requested
    metadata: dict = {"resourceVersion": str(resource_version)}
    if options.limit and len(items) > options.limit:
        remaining = len(items) - options.limit
        items = items[:options.limit]
        metadata["continue"] = _encode_continue(resource_version, items[-1])
        if not options.has_selector:
            metadata["remainingItemCount"] = remaining
    return items, metadata
