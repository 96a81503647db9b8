"""The `{deployments,replicasets}/{name}/scale` subresource: an autoscaling/v1 Scale view of the object."""

from __future__ import annotations

from . import resources as r
from .errors import invalid
from .selectors import selector_string


def scale_of(deployment: dict) -> dict:
    """The Scale object the API server derives from a Deployment."""
    metadata = deployment["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {key: metadata[key] for key in ("name", "namespace", "uid", "resourceVersion",
                                                    "creationTimestamp")},
        "spec": {"replicas": deployment["spec"]["replicas"]},
        "status": {
            "replicas": (deployment.get("status") or {}).get("replicas", 0),
            "selector": selector_string(deployment["spec"]["selector"].get("matchLabels") or {}),
        },
    }


def rescaled(deployment: dict, scale: dict) -> dict:
    """The Deployment with the Scale's replicas; the Scale's resourceVersion, if any, is a precondition."""
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        resource = r.REPLICASETS if deployment["kind"] == r.REPLICASETS.kind else r.DEPLOYMENTS
        raise invalid(resource, deployment["metadata"]["name"], [
            {"field": "spec.replicas", "message": f"Invalid value: {replicas}: must be greater than or equal to 0"}])
    deployment["spec"]["replicas"] = replicas
    expected = (scale.get("metadata") or {}).get("resourceVersion")
    if expected:
        deployment["metadata"]["resourceVersion"] = expected
    return deployment
