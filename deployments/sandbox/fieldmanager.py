"""Field ownership (`metadata.managedFields`) and server-side apply, as the API server's field manager does it.

Every write records who set which field, at field level, in the real
`FieldsV1` format: `f:<field>` for struct and map fields, `k:{...}` for an item
of a list merged by keys (`x-kubernetes-list-map-keys` in the official schema,
see `deployments.kubeschema`), `v:<value>` for an item of a set, with `.` marking
an item owned as a whole. Other lists and atomic maps are owned as one value.

- An update (create, replace, any patch, the scale subresource) by manager M
  gives M the fields it changed and takes them from everyone else, without
  conflict; fields it removed belong to nobody any more.
- An apply by M merges M's configuration into the object (maps by key, lists by
  their keys) and makes it M's whole set. Changing a field another manager owns
  is a 409 conflict naming manager and field, unless forced (then M takes it).
  A field M applied before and no longer applies is removed only when no other
  manager owns it (or anything inside it).

Simplified: key fields missing from a list item take their schema default only
for `protocol` (TCP); status writes by the controller are not tracked; an
apply's `null` values remove the field.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from deployments.kubeschema import Node, item_key, root

from .errors import ApiError

Path = tuple[str, ...]
_MISSING = object()
# Metadata fields no manager owns: identity and the server's bookkeeping.
_UNOWNED_METADATA = frozenset({"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                               "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"})


def schema_of(obj: dict) -> Node:
    return root(str(obj.get("apiVersion", "")), str(obj.get("kind", ""))) or Node({})


def _item_element(node: Node, item: Any) -> str:
    if node.list_type == "map":
        return "k:" + json.dumps(dict(zip(node.list_keys, item_key(node, item), strict=True)), sort_keys=True,
                                 separators=(",", ":"))
    return "v:" + json.dumps(item, sort_keys=True, separators=(",", ":"))


def field_paths(obj: dict) -> set[Path]:
    """The fields set in `obj`, as paths of FieldsV1 elements (`("f:spec", "f:replicas")`)."""
    content = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    metadata = {k: v for k, v in (content.get("metadata") or {}).items() if k not in _UNOWNED_METADATA}
    content["metadata"] = metadata
    if not metadata:
        del content["metadata"]
    return _paths(content, schema_of(obj), ())


def _paths(value: Any, node: Node, prefix: Path) -> set[Path]:
    if isinstance(value, dict) and not node.atomic_map:
        if not value:
            return {prefix} if prefix else set()
        found: set[Path] = set()
        for key, child_value in value.items():
            found |= _paths(child_value, node.child(key) or Node({}), (*prefix, f"f:{key}"))
        return found
    if isinstance(value, list) and node.list_type in ("map", "set") and value:
        found = set()
        for item in value:
            element = (*prefix, _item_element(node, item))
            found.add(element)
            if node.list_type == "map":
                found |= _paths(item, node.items, element)
        return found
    return {prefix}


def _child(value: Any, element: str, node: Node) -> tuple[Any, Node]:
    """The value and schema one FieldsV1 element down from `value` (`_MISSING` when absent)."""
    if element.startswith("f:"):
        key = element[2:]
        if isinstance(value, dict) and key in value:
            return value[key], node.child(key) or Node({})
        return _MISSING, Node({})
    if isinstance(value, list):
        for item in value:
            if _item_element(node, item) == element:
                return item, node.items
    return _MISSING, Node({})


def value_at(obj: dict, path: Path) -> Any:
    value, node = obj, schema_of(obj)
    for element in path:
        value, node = _child(value, element, node)
        if value is _MISSING:
            break
    return value


def _remove(obj: dict, path: Path) -> None:
    """Delete the field or list item at `path`, and maps left empty by that."""
    parents: list[tuple[Any, str]] = []
    value, node = obj, schema_of(obj)
    for element in path[:-1]:
        parents.append((value, element))
        value, node = _child(value, element, node)
        if value is _MISSING:
            return
    last = path[-1]
    if last.startswith("f:") and isinstance(value, dict):
        value.pop(last[2:], None)
    elif isinstance(value, list):
        value[:] = [item for item in value if _item_element(node, item) != last]
    for parent, element in reversed(parents):
        child = parent.get(element[2:]) if isinstance(parent, dict) and element.startswith("f:") else None
        if child == {}:
            parent.pop(element[2:])


# FieldsV1 encoding


def to_fields_v1(paths: set[Path]) -> dict:
    tree: dict = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        if path and any(p[:len(path)] == path and len(p) > len(path) for p in paths):
            node["."] = {}
    return tree


def from_fields_v1(tree: dict, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for element, children in tree.items():
        if element == ".":
            paths.add(prefix)
            continue
        path = (*prefix, element)
        if children:
            paths |= from_fields_v1(children, path)
        if not children or "." in children:
            paths.add(path)
    return paths


def render_path(path: Path) -> str:
    """A path as the API server prints it in conflicts: `.spec.template.spec.containers[name="web"].image`."""
    text = ""
    for element in path:
        kind, body = element[0], element[2:]
        if kind == "f":
            text += f".{body}"
        elif kind == "k":
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(body).items()) + "]"
        else:
            text += f"[={body}]"
    return text


# Managed fields entries


def _entries(obj: dict) -> list[dict]:
    return copy.deepcopy((obj.get("metadata") or {}).get("managedFields") or [])


def _identity(entry: dict) -> tuple:
    return entry.get("manager"), entry.get("operation"), entry.get("subresource", "")


def _manager_label(entry: dict) -> str:
    label = json.dumps(entry["manager"])
    if entry.get("subresource"):
        label += f" with subresource {json.dumps(entry['subresource'])}"
    if entry.get("operation") == "Update":
        label += f" using {entry.get('apiVersion', '')}"
    return label


def _store_entries(obj: dict, entries: list[tuple[dict, set[Path]]]) -> None:
    kept = []
    for entry, paths in entries:
        if paths:
            kept.append({**entry, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(paths)})
    obj.setdefault("metadata", {})["managedFields"] = kept
    if not kept:
        obj["metadata"].pop("managedFields")


def _owned_by_others(path: Path, others: list[set[Path]]) -> bool:
    return any(p[:len(path)] == path for paths in others for p in paths)


def record_update(current: dict | None, new: dict, manager: str, now: str, subresource: str = "") -> None:
    """Give `manager` the fields that `new` changed from `current` (None: created) and take them from others."""
    before = field_paths(current) if current is not None else set()
    after = field_paths(new)
    # An item of a keyed list or set is changed by appearing; changes inside it are its fields'.
    changed = {p for p in after if p not in before
               or not p[-1].startswith(("k:", "v:")) and value_at(new, p) != value_at(current, p)}
    lost = (before - after) | changed
    identity = (manager, "Update", subresource)
    entries: list[tuple[dict, set[Path]]] = []
    own: set[Path] = set()
    for entry in _entries(current or {}):
        paths = from_fields_v1(entry.get("fieldsV1") or {}) - lost
        if _identity(entry) == identity:
            own = paths
        else:
            entries.append((entry, paths))
    if changed or own:
        stamp = {"manager": manager, "operation": "Update", "apiVersion": new.get("apiVersion", ""), "time": now}
        if subresource:
            stamp["subresource"] = subresource
        entries.append((stamp, own | changed))
    _store_entries(new, entries)


def apply(current: dict, config: dict, manager: str, *, force: bool, now: str) -> dict:
    """The object after `manager` applies `config` to `current` (see the module docstring); 409 on conflicts."""
    node = schema_of(config)
    applied = field_paths(config)
    result = merge(current, {k: v for k, v in config.items() if k != "status"}, node)
    identity = (manager, "Apply", "")
    mine: set[Path] = set()
    others: list[tuple[dict, set[Path]]] = []
    for entry in _entries(current):
        paths = from_fields_v1(entry.get("fieldsV1") or {})
        if _identity(entry) == identity:
            mine = paths
        else:
            others.append((entry, paths))

    conflicts = [(entry, path) for entry, paths in others for path in sorted(paths & applied)
                 if not path[-1].startswith(("k:", "v:")) and value_at(current, path) != value_at(result, path)]
    if conflicts and not force:
        raise conflict_error(conflicts)
    for entry, paths in others:
        paths -= {path for owner, path in conflicts if owner is entry}
    for path in sorted(mine - applied, key=len, reverse=True):
        if not _owned_by_others(path, [paths for _, paths in others]):
            _remove(result, path)

    stamp = {"manager": manager, "operation": "Apply", "apiVersion": config.get("apiVersion", ""), "time": now}
    previous = next((e for e in _entries(current) if _identity(e) == identity), None)
    if previous is not None and mine == applied:  # re-applying the same set leaves the entry (and its time) alone
        stamp = previous
    _store_entries(result, [*others, (stamp, applied)])
    return result


def merge(live: Any, config: Any, node: Node) -> Any:
    """`config` merged into `live`: maps by key, lists by their keys or as sets, everything else replaced."""
    if isinstance(config, dict) and isinstance(live, dict) and not node.atomic_map:
        result = copy.deepcopy(live)
        for key, value in config.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = merge(live.get(key), value, node.child(key) or Node({}))
        return result
    if isinstance(config, list) and isinstance(live, list) and node.list_type in ("map", "set"):
        result = copy.deepcopy(live)
        positions = {_item_element(node, item): index for index, item in enumerate(result)}
        for item in config:
            element = _item_element(node, item)
            if element not in positions:
                positions[element] = len(result)
                result.append(copy.deepcopy(item))
            elif node.list_type == "map":
                result[positions[element]] = merge(result[positions[element]], item, node.items)
        return result
    return copy.deepcopy(config)


def conflict_error(conflicts: list[tuple[dict, Path]]) -> ApiError:
    """409 Conflict worded as the API server's field manager words it."""
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {_manager_label(entry)}",
               "field": render_path(path)} for entry, path in conflicts]
    if len(conflicts) == 1:
        message = f"Apply failed with 1 conflict: {causes[0]['message']}: {causes[0]['field']}"
    else:
        lines = []
        for label in sorted({_manager_label(entry) for entry, _ in conflicts}):
            lines.append(f"conflicts with {label}")
            lines += [f"- {render_path(path)}" for entry, path in conflicts if _manager_label(entry) == label]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, details={"causes": causes})
