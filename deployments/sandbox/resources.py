"""The resource kinds the sandbox serves, and the discovery documents built from them.

One table drives routing, storage keys, error messages and discovery, so adding a
kind is a one-line change and the three can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

READ_WRITE_VERBS = ["create", "delete", "get", "list", "patch", "update"]
SUBRESOURCE_VERBS = ["get", "patch", "update"]


@dataclass(frozen=True)
class ResourceType:
    """A served Kubernetes resource (one plural name within one group/version)."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    # Kinds with a status subresource ignore `status` on writes to the main
    # resource, as the real API server does.
    has_status: bool = True
    # metadata.generation counts spec changes; only kinds whose controllers
    # report observedGeneration track it.
    tracks_generation: bool = False
    # The real server answers DELETE with the deleted object for these kinds and
    # with a Status for the others; the official client parses them accordingly.
    returns_deleted_object: bool = False
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified_resource(self) -> str:
        """`deployments.apps`, as the API server names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """`Deployment.apps`, as the API server names a kind in validation messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",),
                          returns_deleted_object=True, subresources=("status",))
CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap", namespaced=True, short_names=("cm",), has_status=False)
SECRETS = ResourceType("", "v1", "secrets", "Secret", namespaced=True, has_status=False)
SERVICES = ResourceType("", "v1", "services", "Service", namespaced=True, short_names=("svc",),
                        returns_deleted_object=True, subresources=("status",))
PODS = ResourceType("", "v1", "pods", "Pod", namespaced=True, short_names=("po",),
                    returns_deleted_object=True, subresources=("log", "status"))
RESOURCEQUOTAS = ResourceType("", "v1", "resourcequotas", "ResourceQuota", namespaced=True, short_names=("quota",),
                              returns_deleted_object=True, subresources=("status",))
DEPLOYMENTS = ResourceType("apps", "v1", "deployments", "Deployment", namespaced=True, short_names=("deploy",),
                           tracks_generation=True, subresources=("scale", "status"))
INGRESSES = ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress", namespaced=True, short_names=("ing",),
                         tracks_generation=True, subresources=("status",))
NETWORKPOLICIES = ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", namespaced=True,
                               short_names=("netpol",), has_status=False, tracks_generation=True)
REPLICASETS = ResourceType("apps", "v1", "replicasets", "ReplicaSet", namespaced=True, short_names=("rs",),
                           tracks_generation=True, subresources=("scale", "status"))
EVENTS = ResourceType("", "v1", "events", "Event", namespaced=True, short_names=("ev",), has_status=False)
# The same events in their newer shape (`regarding`, `note`, `eventTime`); the recorder writes both.
EVENTS_V1 = ResourceType("events.k8s.io", "v1", "events", "Event", namespaced=True, short_names=("ev",),
                         has_status=False)
SERVICEACCOUNTS = ResourceType("", "v1", "serviceaccounts", "ServiceAccount", namespaced=True, short_names=("sa",),
                               has_status=False)
PERSISTENTVOLUMECLAIMS = ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", namespaced=True,
                                      short_names=("pvc",), returns_deleted_object=True, subresources=("status",))
PODDISRUPTIONBUDGETS = ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", namespaced=True,
                                    short_names=("pdb",), tracks_generation=True, subresources=("status",))
JOBS = ResourceType("batch", "v1", "jobs", "Job", namespaced=True, subresources=("status",))
HORIZONTALPODAUTOSCALERS = ResourceType("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
                                        namespaced=True, short_names=("hpa",), tracks_generation=True,
                                        subresources=("status",))

RESOURCE_TYPES: tuple[ResourceType, ...] = (
    NAMESPACES, CONFIGMAPS, SECRETS, SERVICES, PODS, RESOURCEQUOTAS,
    DEPLOYMENTS, INGRESSES, NETWORKPOLICIES, HORIZONTALPODAUTOSCALERS,
    REPLICASETS, EVENTS, EVENTS_V1,
    SERVICEACCOUNTS, PERSISTENTVOLUMECLAIMS, PODDISRUPTIONBUDGETS, JOBS,
)

# Subresources whose object is not the parent kind: (group, version, kind).
_FOREIGN_SUBRESOURCE_KINDS = {"scale": ("autoscaling", "v1", "Scale")}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    """The served resource for a URL's group/version/plural, or None."""
    for resource in RESOURCE_TYPES:
        if (resource.group, resource.version, resource.plural) == (group, version, plural):
            return resource
    return None


def group_versions() -> dict[str, str]:
    """Each served non-core API group mapped to its (single) version."""
    return {r.group: r.version for r in RESOURCE_TYPES if r.group}


def _api_resource(resource: ResourceType) -> dict:
    entry: dict = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": READ_WRITE_VERBS,
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    return entry


def _api_subresource(resource: ResourceType, subresource: str) -> dict:
    entry: dict = {
        "name": f"{resource.plural}/{subresource}",
        "singularName": "",
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": ["get"] if subresource == "log" else SUBRESOURCE_VERBS,
    }
    if subresource in _FOREIGN_SUBRESOURCE_KINDS:
        group, version, kind = _FOREIGN_SUBRESOURCE_KINDS[subresource]
        entry.update(group=group, version=version, kind=kind)
    return entry


def resource_list(group: str, version: str) -> dict | None:
    """The APIResourceList document for `/api/v1` or `/apis/{group}/{version}`."""
    served = [r for r in RESOURCE_TYPES if (r.group, r.version) == (group, version)]
    if not served:
        return None
    entries = []
    for resource in served:
        entries.append(_api_resource(resource))
        entries.extend(_api_subresource(resource, sub) for sub in resource.subresources)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": served[0].api_version,
        "resources": entries,
    }


def api_group_list() -> dict:
    """The APIGroupList document for `/apis`."""
    groups = []
    for group, version in group_versions().items():
        discovery = {"groupVersion": f"{group}/{version}", "version": version}
        groups.append({"name": group, "versions": [discovery], "preferredVersion": discovery})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
