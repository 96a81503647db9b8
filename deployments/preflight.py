"""Refuse, before anything touches a cluster, manifests the API server would reject.

The rendered objects go through the API server's own checks
(`deployments.kubevalidation`, the same code the sandbox's admission runs), and
each refusal is reported against the application field that produced the bad
value, so a release is refused at filing with `port: ...`, not halfway
through a deploy with a manifest path. A refusal that no application field
explains (a Slipway bug) is reported under `manifests`.

Pure: no database, no I/O.
"""
import re

from paas_site.errors import invalid_fields

from .kubevalidation import review
from .manifests import REDACTED, Manifest, ReleaseConfig, render
from .specs import DeploySpec

_PLACEHOLDER_IMAGE = "registry.invalid/preflight:check"

_CONTAINER = r"spec\.template\.spec\.containers\[0\]"
# (kind, manifest field path) → the application field (or release input) that renders it.
_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("Deployment", rf"{_CONTAINER}\.ports\[0\]\.containerPort", "port"),
    ("Service", r"spec\.ports\[0\]\.(port|targetPort)", "port"),
    ("Ingress", r"spec\.rules\[0\]\.http\.paths\[0\]\.backend\.service\.port.*", "port"),
    ("Ingress", r"spec\.rules\[0\]\.host", "hostname"),
    ("Deployment", rf"{_CONTAINER}\.resources\.requests\[cpu\]", "cpu_request"),
    ("Deployment", rf"{_CONTAINER}\.resources\.limits\[cpu\]", "cpu_limit"),
    ("Deployment", rf"{_CONTAINER}\.resources\.requests\[memory\]", "memory_request"),
    ("Deployment", rf"{_CONTAINER}\.resources\.limits\[memory\]", "memory_limit"),
    ("Deployment", rf"{_CONTAINER}\.(readiness|liveness)Probe\.httpGet\.path", "health_path"),
    ("Deployment", rf"{_CONTAINER}\.volumeMounts\[0\]\.mountPath", "config_path"),
    ("Deployment", rf"{_CONTAINER}\.env.*", "config.env"),
    ("Deployment", rf"{_CONTAINER}\.image", "image"),
    ("Deployment", r"spec\.replicas", "replicas"),
    ("ConfigMap", r"(binaryData|data)\[.*\]", "config.files"),
    ("HorizontalPodAutoscaler", r"spec\.minReplicas", "autoscaling_min"),
    ("HorizontalPodAutoscaler", r"spec\.maxReplicas", "autoscaling_max"),
    ("HorizontalPodAutoscaler", r"spec\.metrics\[0\]\.resource\.target\.averageUtilization",
     "autoscaling_target_cpu"),
    ("ResourceQuota", r"spec\.hard.*", "environment.quota"),
)


def application_field(kind: str, path: str, message: str = "") -> str:
    """The application field behind `path` in a `kind` object (`manifests` when none is)."""
    if kind == "Deployment" and re.fullmatch(rf"{_CONTAINER}\.resources\.requests", path):
        # "requests ≤ limits" is reported on the requests, naming the resource in its message
        return "memory_request" if "memory limit" in message else "cpu_request"
    for source_kind, pattern, field in _SOURCES:
        if source_kind == kind and re.fullmatch(pattern, path):
            return field
    return "manifests"


def _checkable(obj: Manifest) -> Manifest:
    """A revision's Secret holds placeholders, not base64: check it with empty values instead."""
    if obj.get("kind") == "Secret":
        data = obj.get("data") or {}
        return {**obj, "data": {key: "" if value == REDACTED else value for key, value in data.items()}}
    return obj


def manifest_refusals(objects: list[Manifest]) -> dict[str, list[str]]:
    """Application field → what the API server would answer, for every object it would refuse."""
    refusals: dict[str, list[str]] = {}
    for obj in objects:
        kind, name = obj.get("kind", ""), (obj.get("metadata") or {}).get("name", "")
        result = review(_checkable(obj))
        problems: list[tuple[str, str]] = []
        if result.decode_error:
            problems.append((result.decode_field, result.decode_error))
        problems += [(path, f'unknown field "{path}"') for path in result.unknown_paths]
        problems += [(cause.field, str(cause)) for cause in result.causes]
        for path, message in problems:
            field = application_field(kind, path, message)
            refusals.setdefault(field, []).append(f"the cluster would refuse {kind} {name}: {message}")
    return refusals


def manifests_check(objects: list[Manifest]) -> None:
    """Raise a 400 naming each application field whose rendered value a Kubernetes API server would refuse."""
    refusals = manifest_refusals(objects)
    if refusals:
        raise invalid_fields(refusals)


def release_check(*, spec: DeploySpec, config: ReleaseConfig, image: str) -> None:
    """At filing: render the release's objects (a build's image is not known yet) and check them.

    What `manifests.render` itself refuses (its input checks) is left to the deploy step, as before.
    """
    try:
        objects = render(spec=spec, image=image or _PLACEHOLDER_IMAGE, config=config, release="preflight")
    except ValueError:
        return
    manifests_check(objects)
