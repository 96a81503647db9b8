"""Pure functions computing the object a PATCH or server-side apply asks for.

They only transform dicts; the store decides what the result means (validation,
preconditions, generation and resourceVersion).

Server-side apply is deliberately simplified. Ownership is tracked per manager
at the granularity of top-level fields (`spec`, `data`, ...) plus individual
labels and annotations, and recorded in `metadata.managedFields` in the real
format (`fieldsV1` holds only those coarse entries). Applying makes the
manager's configuration the value of every field it names and removes the
fields it owned before but no longer names. There are no field conflicts
between managers: `force` is accepted and changes nothing.
"""

from __future__ import annotations

import copy

import jsonpatch

from .errors import ApiError, bad_request

JSON_PATCH = "application/json-patch+json"

# Top-level keys that are not "content": identity and server-maintained state.
_ENVELOPE_KEYS = frozenset({"apiVersion", "kind", "metadata", "status"})
_OWNED_METADATA_MAPS = ("labels", "annotations")


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386 JSON merge patch: maps merge recursively, `null` deletes, anything else replaces.

    Strategic merge patches are applied with this too: for maps they agree, and
    for lists (which strategic merge would merge by key) replacing is a
    documented simplification of the sandbox.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _fields_v1(config: dict) -> dict:
    fields: dict = {f"f:{key}": {} for key in sorted(config) if key not in _ENVELOPE_KEYS}
    metadata = config.get("metadata") or {}
    owned_metadata = {
        f"f:{section}": {f"f:{key}": {} for key in sorted(metadata[section])}
        for section in _OWNED_METADATA_MAPS
        if metadata.get(section)
    }
    if owned_metadata:
        fields["f:metadata"] = owned_metadata
    return fields


def _owned(fields_v1: dict) -> tuple[set[str], dict[str, set[str]]]:
    """(top-level keys, {"labels": keys, "annotations": keys}) recorded in a fieldsV1 entry."""
    top = {key[2:] for key in fields_v1 if key != "f:metadata"}
    metadata = fields_v1.get("f:metadata", {})
    maps = {section: {key[2:] for key in metadata.get(f"f:{section}", {})} for section in _OWNED_METADATA_MAPS}
    return top, maps


def apply_config(current: dict, config: dict, manager: str, now: str) -> dict:
    """The object after `manager` applies `config` to `current` (see the module docstring)."""
    result = copy.deepcopy(current)
    entries = result.get("metadata", {}).get("managedFields") or []
    previous = next((e for e in entries if e.get("manager") == manager and e.get("operation") == "Apply"), None)
    previous_fields = previous.get("fieldsV1", {}) if previous else {}
    previous_top, previous_maps = _owned(previous_fields)

    for key in previous_top - set(config):
        result.pop(key, None)
    for key, value in config.items():
        if key not in _ENVELOPE_KEYS:
            result[key] = copy.deepcopy(value)

    metadata = result.setdefault("metadata", {})
    applied_metadata = config.get("metadata") or {}
    for section in _OWNED_METADATA_MAPS:
        values = {k: v for k, v in (metadata.get(section) or {}).items() if k not in previous_maps[section]}
        values.update(applied_metadata.get(section) or {})
        if values:
            metadata[section] = values
        else:
            metadata.pop(section, None)
    if applied_metadata.get("resourceVersion"):
        metadata["resourceVersion"] = applied_metadata["resourceVersion"]

    fields = _fields_v1(config)
    if fields != previous_fields:
        entry = {"manager": manager, "operation": "Apply", "apiVersion": config.get("apiVersion", ""),
                 "time": now, "fieldsType": "FieldsV1", "fieldsV1": fields}
        metadata["managedFields"] = [e for e in entries if e is not previous] + [entry]
    return result


def json_patch_of(data: bytes) -> jsonpatch.JsonPatch:
    """An RFC 6902 JSON patch from a request body (400 if it is not a list of operations)."""
    try:
        return jsonpatch.JsonPatch.from_string(data.decode())
    except (ValueError, jsonpatch.InvalidJsonPatch) as error:
        raise bad_request(f"the request body could not be decoded as a JSON patch: {error}") from error


def patched(current: dict, patch: dict | jsonpatch.JsonPatch) -> dict:
    """`current` after a merge patch (a dict) or a JSON patch (422 when an operation does not apply)."""
    if not isinstance(patch, jsonpatch.JsonPatch):
        return merge_patch(current, patch)
    try:
        return patch.apply(current)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
        raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {error}")\
            from error
