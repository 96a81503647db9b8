"""Defaulting and validation applied to every write, like the API server's registry strategies.

Only what the platform relies on is checked, but what is checked fails with the
real server's status code and message wording, so code written against the
sandbox handles a real cluster's errors too.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass

from deployments.kubevalidation import review

from . import options
from . import resources as r
from .errors import bad_request, invalid
from .resources import ResourceType

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"


@dataclass(frozen=True)
class _NameRule:
    """One of the API server's object-name formats, with its error wording."""

    pattern: str
    max_length: int
    description: str

    def problem(self, name: str) -> str | None:
        if len(name) > self.max_length:
            return f'Invalid value: "{name}": must be no more than {self.max_length} characters'
        if not re.fullmatch(self.pattern, name):
            return (f'Invalid value: "{name}": {self.description} '
                    f"(regex used for validation is '{self.pattern}')")
        return None


_SUBDOMAIN = _NameRule(
    rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*", 253,
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character")
_LABEL = _NameRule(
    _DNS1123_LABEL, 63,
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character")
_DNS1035_LABEL = _NameRule(
    r"[a-z]([-a-z0-9]*[a-z0-9])?", 63,
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character")
# Names that become DNS labels on their own (namespaces, service host names) are stricter.
_NAME_RULES = {r.NAMESPACES: _LABEL, r.SERVICES: _DNS1035_LABEL}


_INITIAL_STATUS: dict[ResourceType, dict] = {
    r.NAMESPACES: {"phase": "Active"},
    r.PODS: {"phase": "Pending"},
    r.SERVICES: {"loadBalancer": {}},
    r.INGRESSES: {"loadBalancer": {}},
    r.HORIZONTALPODAUTOSCALERS: {"desiredReplicas": 0},  # not optional in the API (nor the client's model)
    r.PERSISTENTVOLUMECLAIMS: {"phase": "Pending"},  # nothing provisions volumes here
    # required in the API; the disruption controller, which would count the pods, is not simulated
    r.PODDISRUPTIONBUDGETS: {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0},
}


def initial_status(resource: ResourceType) -> dict:
    """The status a new object starts with; what a client sends is discarded, as on a real server."""
    return copy.deepcopy(_INITIAL_STATUS.get(resource, {}))


def check_identity(resource: ResourceType, obj: dict, name: str | None, namespace: str | None) -> None:
    """400 when the body's kind/apiVersion, name or namespace contradict the URL."""
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if api_version and api_version != resource.api_version:
        raise bad_request(f"the API version in the data ({api_version}) does not match the expected API version "
                          f"({resource.api_version})")
    if kind and kind != resource.kind:
        raise bad_request(f'{kind} in version "{resource.version}" cannot be handled as a {resource.kind}: '
                          f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})")
    metadata = obj.get("metadata") or {}
    if name is not None and metadata.get("name") not in (None, name):
        raise bad_request(f"the name of the object ({metadata['name']}) does not match the name on the URL ({name})")
    if namespace is not None and metadata.get("namespace") not in (None, "", namespace):
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")


def _uid_octets(obj: dict) -> tuple[int, int]:
    """Two stable octets for made-up IP addresses, so an object keeps its address."""
    digits = obj["metadata"]["uid"].replace("-", "")
    return int(digits[0:2], 16), max(int(digits[2:4], 16), 1)


def apply_defaults(resource: ResourceType, obj: dict, previous: dict | None) -> None:
    """Fill in what the real API server defaults, so clients see the same shapes."""
    metadata = obj["metadata"]
    if resource is r.NAMESPACES:
        # Set on every namespace since Kubernetes 1.21 and used by NetworkPolicy selectors.
        metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = metadata.get("name", "")
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    elif resource is r.SECRETS:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    elif resource is r.SERVICES:
        _default_service(obj, previous)
    elif resource is r.DEPLOYMENTS:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = spec.setdefault("strategy", {})
        if strategy.setdefault("type", "RollingUpdate") == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")


def _default_service(obj: dict, previous: dict | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    if previous is not None and previous.get("spec", {}).get("clusterIP"):
        # The cluster IP is allocated once; an apply or replace without it keeps it.
        spec.setdefault("clusterIP", previous["spec"]["clusterIP"])
    elif spec.get("clusterIP") != "None":
        high, low = _uid_octets(obj)
        spec.setdefault("clusterIP", f"10.96.{high}.{low}")
    spec.setdefault("clusterIPs", [spec["clusterIP"]])
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        if "port" in port:
            port.setdefault("targetPort", port["port"])


def validate(resource: ResourceType, obj: dict, previous: dict | None) -> None:
    """422 Invalid listing every problem found, as the real server does."""
    name = obj.get("metadata", {}).get("name") or ""
    causes = _name_causes(resource, name)
    if resource is r.DEPLOYMENTS:
        causes += _deployment_causes(obj, previous)
    elif resource is r.PODS:
        causes += _container_causes(obj.get("spec") or {}, "spec")
    causes += _schema_causes(resource, obj)
    unique = list({(cause["field"], cause["message"]): cause for cause in causes}.values())
    if unique:
        raise invalid(resource, name, unique)


def _schema_causes(resource: ResourceType, obj: dict) -> list[dict]:
    """The official schema and semantic rules (`deployments.kubevalidation`) for a client's write.

    What cannot be decoded is 400, as are unknown fields under `fieldValidation=Strict` or in
    a server-side apply; otherwise unknown fields are dropped (with a warning unless `Ignore`).
    """
    request = options.current()
    if request.manager is None:  # the controller's own write
        return []
    result = review(obj)
    cannot_handle = f'{resource.kind} in version "{resource.version}" cannot be handled as a {resource.kind}: '
    if result.decode_error:
        raise bad_request(cannot_handle + result.decode_error)
    if result.unknown and request.applying:
        metadata = obj.get("metadata") or {}
        where = f"{metadata.get('namespace')}/{metadata.get('name')}" if resource.namespaced else metadata.get("name")
        raise bad_request(f"failed to create typed patch object ({where}; {resource.api_version}, "
                          f"Kind={resource.kind}): .{result.unknown_paths[0]}: field not declared in schema")
    unknown = [f'unknown field "{path}"' for path in result.unknown_paths]
    if unknown and request.field_validation == "Strict":
        raise bad_request(cannot_handle + "strict decoding error: " + ", ".join(unknown))
    if request.field_validation == "Warn":
        request.warnings += unknown
    result.drop_unknown()
    return [{"field": c.field, "message": c.message, "reason": c.reason} for c in result.causes]


def _cause(field: str, message: str, reason: str = "FieldValueInvalid") -> dict:
    return {"field": field, "message": message, "reason": reason}


def _required(field: str, message: str = "Required value") -> dict:
    return _cause(field, message, "FieldValueRequired")


def _name_causes(resource: ResourceType, name: str) -> list[dict]:
    if not name:
        return [_required("metadata.name", "Required value: name or generateName is required")]
    problem = _NAME_RULES.get(resource, _SUBDOMAIN).problem(name)
    return [_cause("metadata.name", problem)] if problem else []


def _go_map(labels: dict) -> str:
    """Render a label map as Go's %#v does, which is how the real message shows it."""
    return "map[string]string{" + ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(labels.items())) + "}"


def _deployment_causes(obj: dict, previous: dict | None) -> list[dict]:
    spec = obj.get("spec") or {}
    causes: list[dict] = []
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        causes.append(_cause("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0"))
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    if not selector:
        causes.append(_required("spec.selector"))
    template = spec.get("template")
    if not template:
        causes.append(_required("spec.template"))
        return causes
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector and any(labels.get(key) != value for key, value in selector.items()):
        causes.append(_cause("spec.template.metadata.labels",
                             f"Invalid value: {_go_map(labels)}: `selector` does not match template `labels`"))
    causes += _container_causes(template.get("spec") or {}, "spec.template.spec")
    old_selector = ((previous or {}).get("spec") or {}).get("selector")
    if previous is not None and spec.get("selector") != old_selector:
        causes.append(_cause("spec.selector", f"Invalid value: {json.dumps(spec.get('selector'))}: "
                                              "field is immutable"))
    return causes


def _container_causes(pod_spec: dict, path: str) -> list[dict]:
    containers = pod_spec.get("containers") or []
    if not containers:
        return [_required(f"{path}.containers")]
    causes = []
    for index, container in enumerate(containers):
        if not container.get("name"):
            causes.append(_required(f"{path}.containers[{index}].name"))
        if not container.get("image"):
            causes.append(_required(f"{path}.containers[{index}].image"))
    return causes
