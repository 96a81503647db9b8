"""`Table` output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), what `kubectl get` prints.

The columns are the real server's default ones per kind (its table printers:
Name, Ready, Up-to-date, Available, Age for Deployments; Name, Ready, Status,
Restarts, Age for Pods; ...), the wide ones with priority 1; a kind without a
printer gets Name and Created At, as the server's default table convertor
does. `includeObject` is `Metadata` (the default: a PartialObjectMetadata per
row), `Object` or `None`, as on the real server.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from .errors import ApiError, bad_request
from .resources import ResourceType

TABLE_API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT = ("Metadata", "Object", "None")
NONE = "<none>"

Cells = Callable[[dict], list]


def wants_table(accept: str) -> bool:
    """Whether the Accept header's first acceptable JSON type asks for a meta.k8s.io/v1 Table (406 otherwise)."""
    offered = [part.strip() for part in accept.split(",") if part.strip()]
    for media in offered:
        kind, *parameters = [piece.strip() for piece in media.split(";")]
        params = dict(p.split("=", 1) for p in parameters if "=" in p)
        if kind not in ("application/json", "application/*", "*/*"):
            continue
        if "as" not in params:
            return False
        if (params.get("as"), params.get("g"), params.get("v")) == ("Table", "meta.k8s.io", "v1"):
            return True
    if not offered:
        return False
    raise ApiError(406, "NotAcceptable", "only the following media types are accepted: application/json, "
                                         "application/json;as=Table;v=v1;g=meta.k8s.io")


def human_duration(seconds: float) -> str:
    """`duration.HumanDuration` of Kubernetes: 5s, 3m2s, 47m, 5h3m, 2d4h, 400d, 3y12d."""
    if seconds < -1:
        return "<invalid>"
    s = max(int(seconds), 0)
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    return f"{years}y{days % 365}d" if years < 8 and days % 365 else f"{years}y"


def age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return human_duration((datetime.now(UTC) - then).total_seconds())


def label_selector_text(selector: dict | None) -> str:
    """`metav1.FormatLabelSelector`: `app=web,tier in (a,b)`, `<none>` when empty."""
    selector = selector or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator in ("In", "NotIn"):
            parts.append(f"{key} {operator.lower()} ({','.join(values)})")
        else:
            parts.append(key if operator == "Exists" else f"!{key}")
    return ",".join(parts) or NONE


def _containers(template_spec: dict) -> tuple[str, str]:
    containers = template_spec.get("containers") or []
    return ",".join(c["name"] for c in containers), ",".join(c.get("image", "") for c in containers)


def _pod(pod: dict) -> list:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for container in statuses:
        state = container.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    ready = sum(bool(c.get("ready")) for c in statuses)
    restarts = sum(c.get("restartCount", 0) for c in statuses)
    return [f"{ready}/{len(spec.get('containers') or [])}", reason, restarts, age(pod["metadata"].get("creationTimestamp")),
            status.get("podIP") or NONE, spec.get("nodeName") or NONE, status.get("nominatedNodeName") or NONE,
            NONE]


def _replicated(obj: dict, counts: Callable[[dict, dict], list]) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(((spec.get("template") or {}).get("spec")) or {})
    return [*counts(spec, status), age(obj["metadata"].get("creationTimestamp")), names, images,
            label_selector_text(spec.get("selector"))]


def _deployment(obj: dict) -> list:
    return _replicated(obj, lambda spec, status: [
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0)])


def _replica_set(obj: dict) -> list:
    return _replicated(obj, lambda spec, status: [
        spec.get("replicas", 1), status.get("replicas", 0), status.get("readyReplicas", 0)])


def _ports(ports: list[dict]) -> str:
    rendered = []
    for port in ports:
        node = f":{port['nodePort']}" if port.get("nodePort") else ""
        rendered.append(f"{port['port']}{node}/{port.get('protocol', 'TCP')}")
    return ",".join(rendered) or NONE


def _service(obj: dict) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    kind = spec.get("type", "ClusterIP")
    ingress = [i.get("ip") or i.get("hostname") for i in (status.get("loadBalancer") or {}).get("ingress") or []]
    external = ",".join(spec.get("externalIPs") or ingress) or ("<pending>" if kind == "LoadBalancer" else NONE)
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or NONE
    return [kind, spec.get("clusterIP") or NONE, external, _ports(spec.get("ports") or []),
            age(obj["metadata"].get("creationTimestamp")), selector]


def _quota_usage(obj: dict, limits: bool) -> str:
    hard, used = (obj.get("status") or {}).get("hard") or (obj.get("spec") or {}).get("hard") or {}, \
        (obj.get("status") or {}).get("used") or {}
    keys = sorted(k for k in hard if k.startswith("limits.") == limits)
    return ", ".join(f"{k}: {used.get(k, '0')}/{hard[k]}" for k in keys)


def _ingress(obj: dict) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    hosts = ",".join(rule.get("host") or "*" for rule in spec.get("rules") or []) or "*"
    addresses = ",".join(i.get("ip") or i.get("hostname") or ""
                         for i in (status.get("loadBalancer") or {}).get("ingress") or [])
    return [spec.get("ingressClassName") or NONE, hosts, addresses, "80, 443" if spec.get("tls") else "80",
            age(obj["metadata"].get("creationTimestamp"))]


def _hpa(obj: dict) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    target = spec.get("scaleTargetRef") or {}
    current = {m["resource"]["name"]: m["resource"]["current"] for m in status.get("currentMetrics") or []
               if m.get("type") == "Resource" and "resource" in m}
    targets = []
    for metric in spec.get("metrics") or []:
        if metric.get("type") != "Resource":
            continue
        name, goal = metric["resource"]["name"], metric["resource"].get("target") or {}
        now = current.get(name, {})
        if "averageUtilization" in goal:
            seen = f"{now['averageUtilization']}%" if "averageUtilization" in now else "<unknown>"
            targets.append(f"{name}: {seen}/{goal['averageUtilization']}%")
        else:
            targets.append(f"{name}: {now.get('averageValue', '<unknown>')}/{goal.get('averageValue', '')}")
    return [f"{target.get('kind', '')}/{target.get('name', '')}", ", ".join(targets) or NONE,
            spec.get("minReplicas", "<unset>"), spec.get("maxReplicas", 0), status.get("currentReplicas", 0),
            age(obj["metadata"].get("creationTimestamp"))]


def _event(obj: dict) -> list:
    involved, source = obj.get("involvedObject") or {}, obj.get("source") or {}
    last = obj.get("lastTimestamp") or obj.get("eventTime") or obj["metadata"].get("creationTimestamp")
    first = obj.get("firstTimestamp") or obj.get("eventTime") or obj["metadata"].get("creationTimestamp")
    source_text = ", ".join(part for part in (source.get("component"), source.get("host")) if part)
    return [age(last), obj.get("type", ""), obj.get("reason", ""),
            f"{involved.get('kind', '').lower()}/{involved.get('name', '')}", involved.get("fieldPath", ""),
            source_text or obj.get("reportingComponent", ""), obj.get("message", ""), age(first),
            obj.get("count", 1), obj["metadata"]["name"]]


def _job(obj: dict) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
    state = ("Complete" if conditions.get("Complete") == "True" else
             "Failed" if conditions.get("Failed") == "True" else "Running")
    duration = ""
    if status.get("startTime"):
        end = status.get("completionTime")
        started = datetime.strptime(status["startTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        finished = datetime.strptime(end, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if end else datetime.now(UTC)
        duration = human_duration((finished - started).total_seconds())
    names, images = _containers(((spec.get("template") or {}).get("spec")) or {})
    return [state, f"{status.get('succeeded', 0)}/{spec.get('completions', 1)}", duration,
            age(obj["metadata"].get("creationTimestamp")), names, images, label_selector_text(spec.get("selector"))]


def _claim(obj: dict) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    capacity = (status.get("capacity") or {}).get("storage", "")
    return [status.get("phase", "Pending"), spec.get("volumeName", ""), capacity,
            ",".join({"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
                      "ReadWriteOncePod": "RWOP"}.get(m, m) for m in status.get("accessModes") or []),
            spec.get("storageClassName") or NONE, spec.get("volumeAttributesClassName") or NONE,
            age(obj["metadata"].get("creationTimestamp")), spec.get("volumeMode", "Filesystem")]


def _budget(obj: dict) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [spec.get("minAvailable", "N/A"), spec.get("maxUnavailable", "N/A"), status.get("disruptionsAllowed", 0),
            age(obj["metadata"].get("creationTimestamp"))]


def _column(name: str, kind: str = "string", description: str = "", priority: int = 0, fmt: str = "") -> dict:
    return {"name": name, "type": kind, "format": fmt, "description": description, "priority": priority}


_NAME = _column("Name", fmt="name", description="Name must be unique within a namespace.")
_AGE = _column("Age", description="CreationTimestamp is a timestamp representing the server time when this "
                                  "object was created.")
_WORKLOAD_WIDE = [_column("Containers", description="Names of each container in the template.", priority=1),
                  _column("Images", description="Images referenced by each container in the template.", priority=1),
                  _column("Selector", description="Label selector for pods.", priority=1)]

# kind -> (columns after Name, cells after the name)
PRINTERS: dict[str, tuple[list[dict], Cells]] = {
    "Pod": ([_column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
             _column("Status", description="The aggregate status of the containers in this pod."),
             _column("Restarts", "string", "The number of times the containers in this pod have been restarted."),
             _AGE,
             _column("IP", description="IP address allocated to the pod.", priority=1),
             _column("Node", description="Name of the Node this pod is assigned to.", priority=1),
             _column("Nominated Node", description="Name of the node the pod is nominated to run on.", priority=1),
             _column("Readiness Gates", description="Pod readiness gates.", priority=1)], _pod),
    "Deployment": ([_column("Ready", description="Number of the pod with ready state"),
                    _column("Up-to-date", "integer", "Total number of non-terminated pods targeted by this "
                                                     "deployment that have the desired template spec."),
                    _column("Available", "integer", "Total number of available pods (ready for at least "
                                                    "minReadySeconds) targeted by this deployment."),
                    _AGE, *_WORKLOAD_WIDE], _deployment),
    "ReplicaSet": ([_column("Desired", "integer", "Replicas is the number of desired replicas."),
                    _column("Current", "integer", "Replicas is the most recently observed number of replicas."),
                    _column("Ready", "integer", "The number of ready replicas for this replica set."),
                    _AGE, *_WORKLOAD_WIDE], _replica_set),
    "Service": ([_column("Type", description="Type determines how the Service is exposed."),
                 _column("Cluster-IP", description="IP address of the service."),
                 _column("External-IP", description="List of IP addresses for which nodes also accept traffic."),
                 _column("Port(s)", description="The list of ports that are exposed by this service."),
                 _AGE,
                 _column("Selector", description="Route service traffic to pods with label keys and values "
                                                 "matching this selector.", priority=1)], _service),
    "ConfigMap": ([_column("Data", "integer", "Number of keys in the config map."), _AGE],
                  lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                             age(o["metadata"].get("creationTimestamp"))]),
    "Secret": ([_column("Type", description="The type of the secret"),
                _column("Data", "integer", "The number of keys in the secret."), _AGE],
               lambda o: [o.get("type", "Opaque"), len(o.get("data") or {}),
                          age(o["metadata"].get("creationTimestamp"))]),
    "Namespace": ([_column("Status", description="The status of the namespace"), _AGE],
                  lambda o: [(o.get("status") or {}).get("phase", "Active"),
                             age(o["metadata"].get("creationTimestamp"))]),
    "ResourceQuota": ([_AGE, _column("Request", description="Request represents a minimum amount of cpu/memory "
                                                            "that a container may consume."),
                       _column("Limit", description="Limits control the maximum amount of cpu/memory that a "
                                                    "container may use independent of contention on the node.")],
                      lambda o: [age(o["metadata"].get("creationTimestamp")), _quota_usage(o, False),
                                 _quota_usage(o, True)]),
    "Ingress": ([_column("Class", description="The name of the IngressClass resource that should be used."),
                 _column("Hosts", description="Hosts that incoming requests are matched against."),
                 _column("Address", description="Address is a list containing ingress points for the "
                                                "load-balancer"),
                 _column("Ports", description="Ports of TLS configurations that open"), _AGE], _ingress),
    "NetworkPolicy": ([_column("Pod-Selector", description="Selects the pods to which this NetworkPolicy "
                                                           "object applies."), _AGE],
                      lambda o: [label_selector_text((o.get("spec") or {}).get("podSelector")),
                                 age(o["metadata"].get("creationTimestamp"))]),
    "HorizontalPodAutoscaler": ([_column("Reference", description="Reference to the target resource"),
                                 _column("Targets", description="Metrics and their current and target values"),
                                 _column("MinPods", description="Lower limit for the number of pods."),
                                 _column("MaxPods", "integer", "Upper limit for the number of pods."),
                                 _column("Replicas", "integer", "Current number of replicas."), _AGE], _hpa),
    "Job": ([_column("Status", description="Status of the job."),
             _column("Completions", description="The completion status of the job as n/m."),
             _column("Duration", description="Time required to complete the job."), _AGE,
             *_WORKLOAD_WIDE], _job),
    "PersistentVolumeClaim": ([_column("Status", description="The phase of the claim."),
                               _column("Volume", description="The binding reference to the PersistentVolume."),
                               _column("Capacity", description="The actual resources of the volume."),
                               _column("Access Modes", description="The access modes of the volume."),
                               _column("StorageClass", description="The name of the StorageClass."),
                               _column("VolumeAttributesClass", description="The VolumeAttributesClass."),
                               _AGE, _column("VolumeMode", description="What type of volume is required.",
                                             priority=1)], _claim),
    "PodDisruptionBudget": ([_column("Min Available", description="The minimum number of pods that must be "
                                                                  "available."),
                             _column("Max Unavailable", description="The maximum number of pods that may be "
                                                                    "unavailable."),
                             _column("Allowed Disruptions", "integer", "Number of pod disruptions that are "
                                                                       "currently allowed."), _AGE], _budget),
    "ServiceAccount": ([_column("Secrets", "integer", "Secrets is the list of secrets allowed to be used by pods "
                                                      "running using this ServiceAccount."), _AGE],
                       lambda o: [len(o.get("secrets") or []), age(o["metadata"].get("creationTimestamp"))]),
    "Event": ([_column("Last Seen", description="The time of the most recent occurrence."),
               _column("Type", description="Type of this event."),
               _column("Reason", description="Why the action was taken."),
               _column("Object", description="The object this Event is about."),
               _column("Subobject", description="The subobject this Event is about.", priority=1),
               _column("Source", description="The component reporting this event.", priority=1),
               _column("Message", description="A human-readable description of the status of this operation."),
               _column("First Seen", description="The time at which the event was first recorded.", priority=1),
               _column("Count", "integer", "The number of times this event has occurred.", priority=1),
               _column("Name", description="The name of the event.", priority=1)], _event),
}
_DEFAULT = ([_column("Created At", "date", "CreationTimestamp is a timestamp representing the server time when "
                                           "this object was created.")],
            lambda o: [o["metadata"].get("creationTimestamp")])


def include_object(value: str | None) -> str:
    if value in (None, ""):
        return "Metadata"
    if value not in INCLUDE_OBJECT:
        raise bad_request(f'includeObject: Unsupported value: "{value}": supported values: '
                          + ", ".join(f'"{v}"' for v in INCLUDE_OBJECT))
    return value


def _row(obj: dict, cells: Cells, include: str) -> dict:
    row: dict = {"cells": [obj["metadata"]["name"], *cells(obj)]}
    if include == "Object":
        row["object"] = obj
    elif include == "Metadata":
        row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": TABLE_API_VERSION,
                         "metadata": obj["metadata"]}
    return row


def table(resource: ResourceType, objects: list[dict], list_metadata: dict, include: str) -> dict:
    """The Table of `objects`; `list_metadata` is the list's (resourceVersion, continue, ...)."""
    columns, cells = PRINTERS.get(resource.kind, _DEFAULT)
    return {"kind": "Table", "apiVersion": TABLE_API_VERSION, "metadata": list_metadata,
            "columnDefinitions": [_NAME, *columns], "rows": [_row(obj, cells, include) for obj in objects]}
