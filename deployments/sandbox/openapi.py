"""`/openapi/v2` and `/openapi/v3`: the API's OpenAPI documents, built from the official schemas.

kubectl reads them to validate (`kubectl apply` checks in the v3 document that
PATCH takes `fieldValidation`, then leaves strict validation to the server) and
to explain fields (`kubectl explain`). No installed package ships the
Kubernetes `swagger.json`, so the documents are assembled from the served kinds
(`resources`) and the schemas of `deployments.kubeschema`, with `$ref`s and
nullable types rewritten to OpenAPI's form. v2 is served as JSON only; a client
that accepts nothing but protobuf gets 406, as from a server without it.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache

from deployments.kubeschema import SCHEMA_VERSION, definitions, kinds

from . import resources as r
from .resources import ResourceType

_QUERY = {
    "dryRun": "When present, indicates that modifications should not be persisted. Valid values: All",
    "fieldManager": "fieldManager is a name associated with the actor or entity that is making these changes.",
    "fieldValidation": "fieldValidation instructs the server on how to handle objects in the request containing "
                       "unknown or duplicate fields. Valid values: Ignore, Warn, Strict",
    "force": "Force is going to \"force\" Apply requests.",
    "propagationPolicy": "Whether and how garbage collection will be performed.",
}
_WRITE_PARAMETERS = {"post": ("dryRun", "fieldManager", "fieldValidation"),
                     "put": ("dryRun", "fieldManager", "fieldValidation"),
                     "patch": ("dryRun", "fieldManager", "fieldValidation", "force"),
                     "delete": ("dryRun", "propagationPolicy")}
_ACTIONS = {"get": "get", "put": "put", "patch": "patch", "delete": "delete", "post": "post"}


def _schema(value: object, ref_prefix: str) -> object:
    """A kubernetes-validate schema node in OpenAPI's dialect."""
    if isinstance(value, list):
        return [_schema(item, ref_prefix) for item in value]
    if not isinstance(value, dict):
        return value
    if "oneOf" in value:  # IntOrString and Quantity
        integer = any("integer" in json.dumps(option) for option in value["oneOf"])
        return {"type": "string", **({"format": "int-or-string"} if integer else {}),
                **{k: v for k, v in value.items() if k not in ("oneOf",)}}
    result = {}
    for key, item in value.items():
        if key == "$ref":
            result[key] = ref_prefix + item.removeprefix("#/$defs/")
        elif key == "type" and isinstance(item, list):
            result[key] = next(t for t in item if t != "null")
        elif key == "additionalProperties" and item is False:
            continue
        else:
            result[key] = _schema(item, ref_prefix)
    return result


@cache
def _schemas(ref_prefix: str) -> dict:
    converted = {}
    for name, schema in definitions().items():
        node = _schema(schema, ref_prefix)
        for field in ("apiVersion", "kind"):  # the strict schemas pin these with enums the real ones lack
            node.get("properties", {}).get(field, {}).pop("enum", None)
        converted[name] = node
    return converted


def _gvk(resource: ResourceType) -> dict:
    return {"group": resource.group, "version": resource.version, "kind": resource.kind}


def _parameter(name: str, v3: bool) -> dict:
    schema = {"type": "boolean" if name == "force" else "string", "uniqueItems": True}
    parameter = {"name": name, "in": "query", "description": _QUERY[name]}
    return {**parameter, "schema": schema} if v3 else {**parameter, **schema}


def _operation(resource: ResourceType, method: str, v3: bool, collection: bool) -> dict:
    verb = "list" if collection and method == "get" else "create" if method == "post" else _ACTIONS[method]
    operation = {
        "description": f"{verb} {resource.kind}",
        "operationId": f"{verb}{resource.kind}",
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": _gvk(resource),
        "parameters": [_parameter(name, v3) for name in _WRITE_PARAMETERS.get(method, ())],
        "responses": {"200": {"description": "OK"}},
    }
    return operation


def _base(resource: ResourceType) -> str:
    prefix = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
    return f"{prefix}/namespaces/{{namespace}}/{resource.plural}" if resource.namespaced else \
        f"{prefix}/{resource.plural}"


def _paths(resources: list[ResourceType], v3: bool) -> dict:
    paths = {}
    for resource in resources:
        base = _base(resource)
        paths[base] = {m: _operation(resource, m, v3, True) for m in ("get", "post")}
        paths[f"{base}/{{name}}"] = {m: _operation(resource, m, v3, False) for m in ("get", "put", "patch", "delete")}
    return paths


def _info() -> dict:
    return {"title": "Kubernetes", "version": f"v{SCHEMA_VERSION}"}


@cache
def v2() -> bytes:
    document = {"swagger": "2.0", "info": _info(), "paths": _paths(list(r.RESOURCE_TYPES), v3=False),
                "definitions": _schemas("#/definitions/")}
    return json.dumps(document).encode()


def _reachable(names: list[str]) -> set[str]:
    """The definitions `names` refer to, directly or not (a group's document carries only those)."""
    found, pending = set(), list(names)
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending += re.findall(r'"\$ref": "#/\$defs/([^"]+)"', json.dumps(definitions()[name]))
    return found


def _group_path(resource: ResourceType) -> str:
    return f"apis/{resource.group}/{resource.version}" if resource.group else f"api/{resource.version}"


@cache
def _v3_documents() -> dict[str, bytes]:
    by_group: dict[str, list[ResourceType]] = {}
    for resource in r.RESOURCE_TYPES:
        by_group.setdefault(_group_path(resource), []).append(resource)
    documents = {}
    for group_path, resources in by_group.items():
        schemas = _schemas("#/components/schemas/")
        used = _reachable([kinds()[(resource.api_version, resource.kind)] for resource in resources
                           if (resource.api_version, resource.kind) in kinds()])
        document = {"openapi": "3.0.0", "info": _info(), "paths": _paths(resources, v3=True),
                    "components": {"schemas": {name: schemas[name] for name in sorted(used)}}}
        documents[group_path] = json.dumps(document).encode()
    return documents


@cache
def v3_root() -> bytes:
    paths = {}
    for path, body in _v3_documents().items():
        digest = hashlib.sha512(body).hexdigest()[:64].upper()  # clients cache a document by its hash
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return json.dumps({"paths": paths}).encode()


def v3(group_path: str) -> bytes | None:
    """The v3 document of `api/v1` or `apis/<group>/<version>`, or None."""
    return _v3_documents().get(group_path.strip("/"))


def accepts_json(accept: str) -> bool:
    return not accept or bool(re.search(r"(application/json|\*/\*)", accept))
