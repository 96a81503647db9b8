"""Pure functions computing the object a PATCH asks for: JSON merge, strategic merge and JSON patches.

They only transform dicts; the store decides what the result means (validation,
preconditions, generation and resourceVersion). Server-side apply is in
`fieldmanager`.

Strategic merge follows the official schema's patch metadata
(`x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`, see
`deployments.kubeschema`): lists with a merge key merge item by item, lists of
scalars with the merge strategy as sets, every other list is replaced. The
directives `$patch` (`replace`, `delete`, `merge`), `$setElementOrder/<list>`,
`$deleteFromPrimitiveList/<list>` and `$retainKeys` are honoured and never
stored.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import jsonpointer

from deployments.kubeschema import Node

from .errors import ApiError, bad_request

_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386 JSON merge patch: maps merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict, operations: object) -> dict:
    """RFC 6902 JSON patch; a failed operation or `test` is 422 as on the real server."""
    if not isinstance(operations, list):
        raise bad_request("the request body of a JSON patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(target, operations)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
        raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {error}",
                       details={}) from error
    except (TypeError, KeyError, AttributeError) as error:  # malformed operations
        raise bad_request(f"invalid JSON patch: {error}") from error


def strategic_merge_patch(target: Any, patch: Any, node: Node) -> Any:
    """Kubernetes' strategic merge patch of `target` (see the module docstring)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    content = {k: v for k, v in patch.items() if not k.startswith("$")}
    if directive == "replace" or not isinstance(target, dict):
        return _without_directives(content)
    result = copy.deepcopy(target)
    if "$retainKeys" in patch:
        keep = set(patch["$retainKeys"] or [])
        result = {key: value for key, value in result.items() if key in keep}
    for key, value in content.items():
        child = node.child(key) or Node({})
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, child)
        else:
            merged = strategic_merge_patch(result.get(key), value, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    for key, value in patch.items():
        if key.startswith(_DELETE_FROM):
            name = key.removeprefix(_DELETE_FROM)
            result[name] = [item for item in result.get(name) or [] if item not in value]
    for key, order in patch.items():
        if key.startswith(_ORDER) and isinstance(result.get(key.removeprefix(_ORDER)), list):
            name = key.removeprefix(_ORDER)
            result[name] = _ordered(result[name], order, (node.child(name) or Node({})).merge_key)
    return result


def _merge_list(live: Any, patch: list, node: Node) -> list:
    key = node.merge_key
    if key is None or not isinstance(live, list):
        items = [item for item in patch if not (isinstance(item, dict) and item.get("$patch"))]
        return _without_directives(items)
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return _without_directives([item for item in patch if not (isinstance(item, dict) and "$patch" in item)])
    if not key:  # a list of scalars merged as a set
        return copy.deepcopy(live) + [item for item in patch if item not in live]
    result = copy.deepcopy(live)
    for item in patch:
        if not isinstance(item, dict):
            continue
        index = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item.get(key)),
                     None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_without_directives(item))
        else:
            result[index] = strategic_merge_patch(result[index], item, node.items)
    return result


def _ordered(items: list, order: list, key: str | None) -> list:
    """`items` in the order `$setElementOrder` gives; items it does not name keep their place after those."""
    def identity(item: Any) -> str:  # as JSON: a client may order by anything, hashable or not
        return json.dumps(item.get(key) if key and isinstance(item, dict) else item, sort_keys=True)

    rank = {identity(entry): position for position, entry in enumerate(order)}
    return sorted(items, key=lambda item: rank.get(identity(item), len(rank)))


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_without_directives(v) for v in value]
    return copy.deepcopy(value)


JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)


def patched(current: dict, body: object, media_type: str, node: Node) -> dict:
    """`current` after a PATCH of `media_type` (one of `PATCH_TYPES`); `node` is its schema."""
    if media_type == JSON_PATCH:
        result = json_patch(current, body)
    elif not isinstance(body, dict):
        raise bad_request("the request body must be an object")
    elif media_type == STRATEGIC_MERGE_PATCH:
        result = strategic_merge_patch(current, body, node)
    else:
        result = merge_patch(current, body)
    if not isinstance(result, dict):  # `{"$patch": "delete"}` or a JSON patch of the root
        raise bad_request("the patch must leave an object: deleting or replacing the whole object is not a patch")
    return result
