"""Label and field selectors for list requests, in the API server's string syntax.

Label selectors: comma-separated requirements that must all hold, each one of
`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`. As in
Kubernetes, `k!=v` and `k notin (...)` also match objects without the label.
Field selectors: `path=v`, `path==v`, `path!=v`, only on the fields the real
server indexes for the kind (`metadata.name` and `metadata.namespace` for
every kind, plus a few per kind, see `SUPPORTED_FIELDS`); any other field is a
400 `field label not supported: <field>`, as the API server answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from .errors import bad_request

Predicate = Callable[[dict], bool]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s+\((?P<values>[^()]*)\)$")
_EQUALITY_RE = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|!=|=)\s*(?P<value>{_VALUE})$")
_EXISTS_RE = re.compile(rf"^(?P<negated>!?)\s*(?P<key>{_KEY})$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")


def _split_requirements(selector: str) -> list[str]:
    """Split on the commas that separate requirements, not those inside `in (...)`."""
    parts, depth, current = [], 0, []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _label_requirement(text: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _SET_RE.match(text):
        key = match["key"]
        values = {value.strip() for value in match["values"].split(",")}
        if not all(value and _VALUE_RE.match(value) for value in values):
            raise bad_request(f"unable to parse requirement: invalid values in {text!r}")
        if match["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQUALITY_RE.match(text):
        key, value = match["key"], match["value"]
        if match["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_RE.match(text):
        key = match["key"]
        if match["negated"]:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(f"unable to parse requirement: {text!r} is not a valid label selector requirement")


def label_selector(selector: str) -> Predicate:
    """A predicate on objects for a `labelSelector` query string (400 if malformed)."""
    requirements = [_label_requirement(text) for text in _split_requirements(selector)]

    def matches(obj: dict) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


# Field labels the API server converts per kind, beyond metadata.name/namespace (its fieldSelector
# conversion functions); a label maps to the object path it reads.
_EVENT_FIELDS = {f"involvedObject.{part}": f"involvedObject.{part}" for part in (
    "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
SUPPORTED_FIELDS: dict[str, dict[str, str]] = {
    "Pod": {label: label for label in (
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName")},
    "Event": {**_EVENT_FIELDS, "reason": "reason", "reportingComponent": "reportingComponent",
              "source": "source.component", "type": "type"},
    "Secret": {"type": "type"},
    "Namespace": {"status.phase": "status.phase"},
    "ReplicaSet": {"status.replicas": "status.replicas"},
    "Job": {"status.successful": "status.succeeded"},
}
_COMMON_FIELDS = {"metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace"}


def _field_value(obj: dict, path: str) -> str:
    value: object = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def field_selector(selector: str, kind: str) -> Predicate:
    """A predicate on objects of `kind` for a `fieldSelector` query string (400 if malformed or unsupported)."""
    supported = {**_COMMON_FIELDS, **SUPPORTED_FIELDS.get(kind, {})}
    requirements: list[tuple[str, bool, str]] = []
    for text in _split_requirements(selector):
        match = re.match(r"^(?P<path>[A-Za-z0-9_.]+)\s*(?P<op>==|!=|=)\s*(?P<value>.*)$", text)
        if not match:
            raise bad_request(f"invalid field selector: {text!r}")
        if match["path"] not in supported:
            raise bad_request(f"field label not supported: {match['path']}")
        requirements.append((supported[match["path"]], match["op"] != "!=", match["value"].strip()))

    def matches(obj: dict) -> bool:
        return all((_field_value(obj, path) == value) == equal for path, equal, value in requirements)

    return matches


def selector_string(match_labels: Mapping[str, str]) -> str:
    """`a=b,c=d`: how the Scale subresource reports a Deployment's selector."""
    return ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))
