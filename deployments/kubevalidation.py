"""What a Kubernetes API server refuses in an object, worded as it words it.

One check, two users: the sandbox's admission answers with it (400 for what
the server cannot decode, 422 `Invalid` with `details.causes` for what fails
validation), and Slipway runs it on every rendered manifest before it touches a
cluster. It covers the official schema, strictly (unknown fields, types,
required fields), and the API server's semantic rules that Slipway's inputs can
reach: names and labels, quantities, requests ≤ limits, port ranges, Ingress
paths, HPA bounds, ConfigMap keys and base64 in Secret `data`. `status` is not
checked: the server validates it only on the status subresource.

Pure and Django-free (see `kubeschema`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .kubeschema import Node, json_kind, root

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][-+]?[0-9]+)?")
_SUFFIXES = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
             "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
             **{s: 2 ** (10 * (i + 1)) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))}}
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_CONFIG_KEY = r"[-._a-zA-Z0-9]+"
_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_REQUIRED_MESSAGES = {"pathType": "Required value: pathType must be specified"}


@dataclass(frozen=True)
class Cause:
    """One `StatusCause`: the field path, the message after it, and the reason code."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class Review:
    """Everything wrong with one object.

    `decode_error` is what the server's decoder stops at (answered 400);
    `unknown` the fields the schema does not declare (400 under
    `fieldValidation=Strict`, dropped with a warning otherwise), each as
    (path, the dict holding it, its key); `causes` what validation refuses (422).
    """

    decode_error: str | None = None
    decode_field: str = ""  # where the decoder stopped
    unknown: list[tuple[str, dict, str]] = field(default_factory=list)
    causes: list[Cause] = field(default_factory=list)

    @property
    def unknown_paths(self) -> list[str]:
        return [path for path, _, _ in self.unknown]

    def drop_unknown(self) -> None:
        for _, container, key in self.unknown:
            container.pop(key, None)
        self.unknown = []


def review(obj: dict) -> Review:
    """Check `obj` (a whole object with apiVersion and kind) as the API server would on a write."""
    result = Review()
    schema = root(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if schema is None:
        return result
    _walk(schema, obj, "", result)
    if result.decode_error is None:
        result.decode_field, result.decode_error = _decode_problem(obj) or ("", None)
    if result.decode_error is None:
        for rule in (_metadata_causes, *_KIND_RULES.get(obj.get("kind", ""), ())):
            result.causes += rule(obj)
    return result


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(node: Node, value: Any, path: str, result: Review, parent: Node | None = None) -> None:
    if value is None or result.decode_error:
        return
    types = node.types
    kind = json_kind(value)
    allowed = {"object": {"object"}, "array": {"array"}, "string": {"string", "int-or-string", "quantity"},
               "bool": {"boolean"}, "number": {"number", "integer", "int-or-string", "quantity"}}[kind]
    integral = not (kind == "number" and "integer" in types and isinstance(value, float) and not value.is_integer())
    if "any" not in types and (not allowed & types or not integral):
        struct = f"{parent.struct_name}." if parent and parent.struct_name else ""
        result.decode_error = (f"json: cannot unmarshal {kind} into Go struct field {struct}{path} "
                               f"of type {node.go_type}")
        result.decode_field = path
        return
    if kind == "object" and "object" in types:
        for required in node.schema.get("required") or []:
            if value.get(required) is None:
                message = _REQUIRED_MESSAGES.get(required, "Required value")
                result.causes.append(Cause(_join(path, required), message, "FieldValueRequired"))
        for key, child_value in value.items():
            if not path and key == "status":
                continue
            child = node.child(key)
            if child is None:
                result.unknown.append((_join(path, key), value, key))
            elif node.is_struct:
                _walk(child, child_value, _join(path, key), result, node)
            else:
                _walk(child, child_value, f"{path}[{key}]", result, node)
    elif kind == "array":
        for index, item in enumerate(value):
            _walk(node.items, item, f"{path}[{index}]", result, parent)


def _decode_problem(obj: dict) -> tuple[str, str] | None:
    """(field, message) for a value the decoder itself refuses: a malformed quantity, bad base64 in a Secret."""
    for path, value in _quantities(obj):
        if not isinstance(value, (int, float)) and parse_quantity(str(value)) is None:
            return path, f"quantities must match the regular expression '{QUANTITY_PATTERN}'"
    if obj.get("kind") == "Secret":
        for key, value in (obj.get("data") or {}).items():
            try:
                base64.b64decode(str(value), validate=True)
            except binascii.Error:
                return f"data[{key}]", f"illegal base64 data at input byte {_bad_base64_offset(str(value))}"
    return None


def _bad_base64_offset(value: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    bad = next((i for i, c in enumerate(value) if c not in alphabet), None)
    return bad if bad is not None else len(value) - len(value) % 4


def parse_quantity(text: str) -> Decimal | None:
    """A Kubernetes quantity's value (`500m` → 0.5, `1Gi` → 1073741824), or None when malformed."""
    match = _QUANTITY.fullmatch(text.strip())
    if not match:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number + suffix)
        return Decimal(number) * _SUFFIXES[suffix]
    except (InvalidOperation, KeyError):
        return None


def _pod_specs(obj: dict) -> list[tuple[str, dict]]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return [("spec", spec)]
    template = spec.get("template") or {}
    return [("spec.template.spec", template.get("spec") or {})] if isinstance(template, dict) else []


def _containers(obj: dict) -> list[tuple[str, dict]]:
    found = []
    for path, pod_spec in _pod_specs(obj):
        for group in ("initContainers", "containers"):
            for index, container in enumerate(pod_spec.get(group) or []):
                if isinstance(container, dict):
                    found.append((f"{path}.{group}[{index}]", container))
    return found


def _quantities(obj: dict) -> list[tuple[str, Any]]:
    found = []
    for path, container in _containers(obj):
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            for name, value in (resources.get(section) or {}).items():
                found.append((f"{path}.resources.{section}[{name}]", value))
    if obj.get("kind") == "ResourceQuota":
        for name, value in ((obj.get("spec") or {}).get("hard") or {}).items():
            found.append((f"spec.hard[{name}]", value))
    return found


def _pattern_problem(value: str, pattern: str, max_length: int, description: str) -> str | None:
    if len(value) > max_length:
        return f"must be no more than {max_length} characters"
    if not re.fullmatch(pattern, value):
        return f"{description}, regex used for validation is '{pattern}')"
    return None


def _label_value_problem(value: str) -> str | None:
    return _pattern_problem(
        value, _LABEL_VALUE, 63, "a valid label must be an empty string or consist of alphanumeric characters, "
        "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  "
        "or '12345'")


def _qualified_name_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and (problem := _pattern_problem(
            prefix, _DNS1123_SUBDOMAIN, 253, "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'example.com'")):
        return problem
    if not name:
        return "name part must be non-empty"
    return _pattern_problem(
        name, _QUALIFIED_NAME, 63, "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
        "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc'")


def label_causes(labels: dict, path: str) -> list[Cause]:
    causes = []
    for key, value in labels.items():
        if problem := _qualified_name_problem(str(key)):
            causes.append(Cause(path, f'Invalid value: "{key}": {problem}'))
        if problem := _label_value_problem(str(value)):
            causes.append(Cause(path, f'Invalid value: "{value}": {problem}'))
    return causes


def _metadata_causes(obj: dict) -> list[Cause]:
    metadata = obj.get("metadata") or {}
    causes = label_causes(metadata.get("labels") or {}, "metadata.labels")
    for key in metadata.get("annotations") or {}:
        if problem := _qualified_name_problem(str(key)):
            causes.append(Cause("metadata.annotations", f'Invalid value: "{key}": {problem}'))
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict):
        labels = (template.get("metadata") or {}).get("labels") or {}
        causes += label_causes(labels, "spec.template.metadata.labels")
    return causes


def _port_cause(path: str, value: Any) -> list[Cause]:
    if isinstance(value, int) and not 1 <= value <= 65535:
        return [Cause(path, f"Invalid value: {value}: must be between 1 and 65535, inclusive")]
    return []


def _container_causes(obj: dict) -> list[Cause]:
    causes = []
    for path, container in _containers(obj):
        for index, port in enumerate(container.get("ports") or []):
            causes += _port_cause(f"{path}.ports[{index}].containerPort", port.get("containerPort"))
        resources = container.get("resources") or {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        for section, values in (("requests", requests), ("limits", limits)):
            for name, value in values.items():
                if parse_quantity(str(value)) < 0:
                    causes.append(Cause(f"{path}.resources.{section}[{name}]",
                                        f'Invalid value: "{value}": must be greater than or equal to 0'))
        for name, request in requests.items():
            if name in limits and parse_quantity(str(request)) > parse_quantity(str(limits[name])):
                causes.append(Cause(f"{path}.resources.requests",
                                    f'Invalid value: "{request}": must be less than or equal to {name} limit of '
                                    f"{limits[name]}"))
    return causes


def _service_causes(obj: dict) -> list[Cause]:
    causes = []
    for index, port in enumerate((obj.get("spec") or {}).get("ports") or []):
        causes += _port_cause(f"spec.ports[{index}].port", port.get("port"))
        causes += _port_cause(f"spec.ports[{index}].targetPort", port.get("targetPort"))
    return causes


def _ingress_causes(obj: dict) -> list[Cause]:
    causes = []
    for r_index, rule in enumerate((obj.get("spec") or {}).get("rules") or []):
        host = rule.get("host")
        if host and (problem := _pattern_problem(
                host.removeprefix("*."), _DNS1123_SUBDOMAIN, 253, "a lowercase RFC 1123 subdomain must consist of "
                "lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                "character (e.g. 'example.com'")):
            causes.append(Cause(f"spec.rules[{r_index}].host", f'Invalid value: "{host}": {problem}'))
        for p_index, path in enumerate((rule.get("http") or {}).get("paths") or []):
            where = f"spec.rules[{r_index}].http.paths[{p_index}]"
            path_type = path.get("pathType")
            if path_type is not None and path_type not in _PATH_TYPES:
                supported = ", ".join(f'"{t}"' for t in _PATH_TYPES)
                causes.append(Cause(f"{where}.pathType", f'Unsupported value: "{path_type}": supported values: '
                                                         f"{supported}", "FieldValueNotSupported"))
            if path_type in ("Exact", "Prefix") and not str(path.get("path") or "").startswith("/"):
                causes.append(Cause(f"{where}.path", f'Invalid value: "{path.get("path") or ""}": '
                                                     "must be an absolute path"))
    return causes


def _autoscaler_causes(obj: dict) -> list[Cause]:
    spec = obj.get("spec") or {}
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    causes = []
    if isinstance(low, int) and low < 1:
        causes.append(Cause("spec.minReplicas", f"Invalid value: {low}: must be greater than or equal to 1"))
    if isinstance(high, int) and isinstance(low, int) and high < low:
        causes.append(Cause("spec.maxReplicas", f"Invalid value: {high}: must be greater than or equal to "
                                                "`minReplicas`"))
    return causes


def _config_map_causes(obj: dict) -> list[Cause]:
    causes = []
    for section in ("data", "binaryData"):
        for key in obj.get(section) or {}:
            problem = _pattern_problem(
                key, _CONFIG_KEY, 253, "a valid config key must consist of alphanumeric characters, '-', '_' or "
                "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name'")
            if problem is None and key in (".", ".."):
                problem = "must not be '.' or '..'"
            elif problem is None and key.startswith(".."):
                problem = "must not start with '..'"
            if problem:
                causes.append(Cause(f"{section}[{key}]", f'Invalid value: "{key}": {problem}'))
    return causes


_KIND_RULES: dict[str, tuple[Callable[[dict], list[Cause]], ...]] = {
    "Pod": (_container_causes,),
    "Deployment": (_container_causes,),
    "Service": (_service_causes,),
    "Ingress": (_ingress_causes,),
    "HorizontalPodAutoscaler": (_autoscaler_causes,),
    "ConfigMap": (_config_map_causes,),
    "Secret": (_config_map_causes,),
}
