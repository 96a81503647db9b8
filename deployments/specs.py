"""The deploy spec: every input of one application in one environment that reaches the cluster. Pure.

A release freezes a :class:`DeploySpec` when it is filed (``Release.snapshot``)
and every step after that reads it, never the live Application: what an
approver approved is what runs. The spec is plain data (``to_json`` /
``from_json`` round-trip exactly) and its ``digest`` is independent of key
order, so the approval fingerprint can cover it.
"""
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .middleware import TEMPLATES

# The ResourceQuota each project namespace gets (a platform constant today; frozen per release all the same).
QUOTA_HARD = {"requests.cpu": "8", "requests.memory": "16Gi", "limits.cpu": "16", "limits.memory": "32Gi",
              "pods": "100"}
DEFAULT_CONFIG_PATH = "/etc/slipway/config"
SPEC_VERSION = 1


@dataclass(frozen=True)
class PinnedBaseImage:
    """The catalog entry a built application is layered onto, pinned to the digest it had at filing."""

    name: str
    image: str  # the reference as the catalog had it (tag)
    digest: str  # what that reference pointed to at filing: the build uses this
    app_path: str
    config_path: str

    @property
    def pinned(self) -> str:
        """``repository:tag@sha256:…`` (the reference itself when it carried no digest to add)."""
        if not self.digest or "@" in self.image:
            return self.image
        return f"{self.image}@{self.digest}"


@dataclass(frozen=True)
class MiddlewareSpec:
    """The template (from the code catalog) and variables of an application that is a middleware instance."""

    template: str
    variables: Mapping[str, Any]


@dataclass(frozen=True)
class UsedInstance:
    """A middleware instance the application connects to: its application's name and port."""

    name: str
    port: int


@dataclass(frozen=True)
class DeploySpec:
    project: str
    application: str
    environment: str
    cluster: str
    cluster_id: int | None
    namespace: str
    port: int
    health_path: str
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    replicas: int
    autoscaling_min: int | None = None
    autoscaling_max: int | None = None
    autoscaling_target_cpu: int | None = None
    exposed: bool = False
    hostname: str | None = None  # the Ingress host (and DNS name) of an exposed application
    smoke_check_url: str = ""
    allowed_callers: tuple[str, ...] = ()
    uses: tuple[UsedInstance, ...] = ()
    middleware: MiddlewareSpec | None = None
    base_image: PinnedBaseImage | None = None
    ingress_class: str = "nginx"
    rollout_deadline_seconds: int = 300
    quota: Mapping[str, str] = field(default_factory=lambda: dict(QUOTA_HARD))
    version: int = SPEC_VERSION

    @property
    def autoscaling(self) -> bool:
        return self.autoscaling_min is not None

    @property
    def config_path(self) -> str:
        template = TEMPLATES.get(self.middleware.template) if self.middleware else None
        if template and template.config_path:
            return template.config_path
        return self.base_image.config_path if self.base_image else DEFAULT_CONFIG_PATH

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["allowed_callers"] = list(self.allowed_callers)
        data["uses"] = [asdict(used) for used in self.uses]
        data["quota"] = dict(self.quota)
        if self.middleware:
            middleware = self.middleware
            data["middleware"] = {"template": middleware.template, "variables": dict(middleware.variables)}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "DeploySpec":
        data = dict(data)
        data["allowed_callers"] = tuple(data.get("allowed_callers") or ())
        data["uses"] = tuple(UsedInstance(**used) for used in data.get("uses") or ())
        data["middleware"] = MiddlewareSpec(**data["middleware"]) if data.get("middleware") else None
        data["base_image"] = PinnedBaseImage(**data["base_image"]) if data.get("base_image") else None
        return cls(**data)

    def digest(self) -> str:
        return canonical_sha256(self.to_json())


def spec_build(
    application: Any, environment: Any, *, namespace: str, cluster: Any = None, hostname: str | None = None,
    allowed_callers: Sequence[str] = (), uses: Sequence[UsedInstance] = (),
    middleware: MiddlewareSpec | None = None, base_image_digest: str = "",
) -> DeploySpec:
    """The spec of ``application`` in ``environment`` from their fields and the related values given.

    Reads attributes only (the callers pass what they queried), so it runs on unsaved rows too.
    """
    base = application.base_image
    return DeploySpec(
        project=application.project.slug, application=application.name, environment=environment.name,
        cluster=cluster.name if cluster else "", cluster_id=cluster.id if cluster else None, namespace=namespace,
        port=application.port, health_path=application.health_path, cpu_request=application.cpu_request,
        cpu_limit=application.cpu_limit, memory_request=application.memory_request,
        memory_limit=application.memory_limit, replicas=application.replicas,
        autoscaling_min=application.autoscaling_min, autoscaling_max=application.autoscaling_max,
        autoscaling_target_cpu=application.autoscaling_target_cpu, exposed=application.exposed,
        hostname=hostname if application.exposed else None, smoke_check_url=application.smoke_check_url,
        allowed_callers=tuple(sorted(set(allowed_callers))), uses=tuple(sorted(uses, key=lambda u: u.name)),
        middleware=middleware,
        base_image=PinnedBaseImage(name=base.name, image=base.image, digest=base_image_digest,
                                 app_path=base.app_path, config_path=base.config_path) if base else None,
        ingress_class=cluster.ingress_class if cluster else "nginx",
        rollout_deadline_seconds=environment.rollout_deadline_seconds,
    )


def spec_differences(filed: DeploySpec, now: DeploySpec) -> list[str]:
    """The fields in which ``now`` differs from what was filed (a base image counts by reference, not digest)."""
    left, right = filed.to_json(), now.to_json()
    for data in (left, right):
        if data["base_image"]:
            data["base_image"] = {**data["base_image"], "digest": ""}
    return sorted(name for name in left.keys() | right.keys() if left.get(name) != right.get(name))


def canonical_sha256(data: Any) -> str:
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()
