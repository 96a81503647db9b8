"""The official Kubernetes object schemas, read from the JSON schemas `kubernetes-validate` ships.

No package here ships Kubernetes' own `swagger.json` or OpenAPI v3 documents;
kubernetes-validate's strict schemas are generated from them and keep their
`x-kubernetes-*` extensions (list types and map keys, patch strategies and merge
keys, group/version/kind), so they are the one source for validation, for the
sandbox's list merges and patches, and for the OpenAPI documents it serves.

Pure and Django-free: the sandbox and Slipway's pre-cluster check both import it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

# The Kubernetes release whose schemas are used: the version the sandbox reports.
SCHEMA_VERSION = "1.31.0"
_REF_PREFIX = "#/$defs/"


@cache
def definitions() -> dict[str, dict]:
    """Every schema definition by its OpenAPI name (`io.k8s.api.apps.v1.Deployment`)."""
    folder = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{SCHEMA_VERSION}-local-strict"
    return json.loads((folder / "_definitions.json").read_text())["$defs"]


@cache
def kinds() -> dict[tuple[str, str], str]:
    """(apiVersion, kind) → definition name, for every top-level kind."""
    found = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            found.setdefault((api_version, gvk["kind"]), name)
    return found


def ref_name(schema: dict) -> str | None:
    ref = schema.get("$ref")
    return ref.removeprefix(_REF_PREFIX) if ref else None


@dataclass(frozen=True)
class Node:
    """One place in a schema: the field's own schema with any `$ref` followed (`definition` names it)."""

    schema: dict
    definition: str | None = None

    @classmethod
    def of(cls, schema: dict) -> Node:
        name = ref_name(schema)
        if name is None:
            return cls(schema)
        merged = {**definitions()[name], **{k: v for k, v in schema.items() if k != "$ref"}}
        return cls(merged, name)

    @property
    def types(self) -> set[str]:
        """JSON types allowed (null left out); `int-or-string` and `quantity` for those two kinds."""
        if "oneOf" in self.schema:
            alternatives = {t for option in self.schema["oneOf"] for t in _types(option)}
            return {"int-or-string"} if "integer" in alternatives else {"quantity"}
        return _types(self.schema) or {"any"}

    @property
    def is_struct(self) -> bool:
        return "properties" in self.schema

    def child(self, key: str) -> Node | None:
        """The schema of field `key` of an object (a struct field or a map value); None when unknown."""
        if key in (self.schema.get("properties") or {}):
            return Node.of(self.schema["properties"][key])
        extra = self.schema.get("additionalProperties")
        if isinstance(extra, dict):
            return Node.of(extra)
        if extra is None and not self.is_struct:
            return Node({})  # free-form (fieldsV1, raw extensions): anything goes
        return None

    @property
    def items(self) -> Node:
        return Node.of(self.schema.get("items") or {})

    @property
    def list_type(self) -> str:
        """`map`, `set` or `atomic`, as the server-side apply merge treats the list."""
        if self.schema.get("x-kubernetes-list-map-keys"):
            return "map"
        return self.schema.get("x-kubernetes-list-type") or "atomic"

    @property
    def list_keys(self) -> tuple[str, ...]:
        return tuple(self.schema.get("x-kubernetes-list-map-keys") or ())

    @property
    def atomic_map(self) -> bool:
        return self.schema.get("x-kubernetes-map-type") == "atomic"

    @property
    def merge_key(self) -> str | None:
        """The strategic-merge-patch key of a list merged by key (None: the list is replaced)."""
        if "merge" not in (self.schema.get("x-kubernetes-patch-strategy") or "").split(","):
            return None
        return self.schema.get("x-kubernetes-patch-merge-key") or ""

    @property
    def retains_keys(self) -> bool:
        return "retainKeys" in (self.schema.get("x-kubernetes-patch-strategy") or "")

    @property
    def go_type(self) -> str:
        """The Go type the API server decodes into, as its decoding errors name it."""
        kind = next(iter(self.types))
        if self.definition and self.is_struct:
            package, name = self.definition.split(".")[-2:]
            return f"{package}.{name}"
        if kind == "integer":
            return self.schema.get("format") or "int"
        if kind == "array":
            return "[]" + self.items.go_type
        if kind == "object":
            return "map[string]" + (self.child("") or Node({})).go_type
        return {"boolean": "bool", "number": "float64", "int-or-string": "intstr.IntOrString",
                "quantity": "resource.Quantity"}.get(kind, kind if kind != "any" else "interface {}")

    @property
    def struct_name(self) -> str:
        return (self.definition or "").rsplit(".", 1)[-1]


def _types(schema: dict) -> set[str]:
    declared = schema.get("type")
    declared = declared if isinstance(declared, list) else [declared] if declared else []
    return {t for t in declared if t != "null"}


def root(api_version: str, kind: str) -> Node | None:
    """The schema of a whole object of this kind, or None for a kind the schemas do not know."""
    name = kinds().get((api_version, kind))
    return Node.of({"$ref": _REF_PREFIX + name}) if name else None


def item_key(node: Node, item: Any) -> tuple | None:
    """The identity of a list-map item: its key fields' values (a missing `protocol` is TCP, its default)."""
    if not isinstance(item, dict):
        return None
    return tuple(item.get(key, "TCP" if key == "protocol" else None) for key in node.list_keys)


def json_kind(value: Any) -> str:
    """A JSON value's kind, worded as Go's JSON decoder words it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), "null")
