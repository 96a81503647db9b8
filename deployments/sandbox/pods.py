"""The simulated pods of a Deployment: their objects, states and logs.

A pod goes Pending (ContainerCreating) → Running and ready, or, when one of
its images is "broken", Running but never ready, restarting in
CrashLoopBackOff. An image is broken when its *tag* ends in `-broken`
(`registry/app:1.2-broken`, also when pinned: `…:1.2-broken@sha256:…`). That
gives demos and tests a deterministic way to produce a failed rollout.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets

from .errors import bad_request

BROKEN_TAG_SUFFIX = "-broken"
TEMPLATE_HASH_LABEL = "pod-template-hash"
# The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_DEFAULT_PORT = 8080
_DEFAULT_HEALTH_PATH = "/healthz"


def is_broken_image(image: str) -> bool:
    """Whether the image's tag ends in `-broken`: `repo:1.2-broken`, or pinned, `repo:1.2-broken@sha256:…`.

    Only the tag decides; a reference with a digest and no tag is never broken.
    """
    name = image.split("@", 1)[0]
    repository_end = name.rfind("/")
    tag_start = name.rfind(":")
    return tag_start > repository_end and name[tag_start + 1:].endswith(BROKEN_TAG_SUFFIX)


def pruned(value: object) -> object:
    """`value` without null, empty-map and empty-list members, so equal templates compare equal.

    Go clients re-encode templates with `creationTimestamp: null` and empty
    `resources: {}`; the API server's typed comparison treats them as absent.
    """
    if isinstance(value, dict):
        items = ((key, pruned(item)) for key, item in value.items())
        return {key: item for key, item in items if item not in (None, {}, [])}
    if isinstance(value, list):
        return [pruned(item) for item in value]
    return value


def template_without_hash(template: dict) -> dict:
    """A pod template as its Deployment states it: pruned, without the `pod-template-hash` label."""
    result = copy.deepcopy(pruned(template))
    labels = (result.get("metadata") or {}).get("labels") or {}
    labels.pop(TEMPLATE_HASH_LABEL, None)
    return pruned(result)


def template_hash(template: dict) -> str:
    """A stable 10-character `pod-template-hash` for a pod template."""
    canonical = json.dumps(template_without_hash(template), sort_keys=True).encode()
    digest = hashlib.sha256(canonical).digest()
    return "".join(_NAME_ALPHABET[byte % len(_NAME_ALPHABET)] for byte in digest[:10])


def controller_of(obj: dict) -> dict | None:
    """The ownerReference with `controller: true`, if any."""
    return next((o for o in obj["metadata"].get("ownerReferences") or [] if o.get("controller")), None)


def owner_reference(owner: dict) -> dict:
    """A controller ownerReference to `owner`, as the Deployment and ReplicaSet controllers set it."""
    metadata = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": metadata["name"],
            "uid": metadata["uid"], "controller": True, "blockOwnerDeletion": True}


def new_pod(replica_set: dict) -> dict:
    """A pod for the ReplicaSet's template, owned by the ReplicaSet (whose template carries the hash label)."""
    metadata = replica_set["metadata"]
    template = replica_set["spec"]["template"]
    template_metadata = template.get("metadata") or {}
    suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
    pod_metadata = {
        "name": f"{metadata['name']}-{suffix}",
        "labels": dict(template_metadata.get("labels") or {}),
        "ownerReferences": [owner_reference(replica_set)],
    }
    if template_metadata.get("annotations"):
        pod_metadata["annotations"] = dict(template_metadata["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_metadata, "spec": copy.deepcopy(template["spec"])}


def _containers(pod: dict) -> list[dict]:
    return pod["spec"]["containers"]


def pod_is_broken(pod: dict) -> bool:
    return any(is_broken_image(container["image"]) for container in _containers(pod))


def _pod_ip(pod: dict) -> str:
    digits = pod["metadata"]["uid"].replace("-", "")
    return f"10.244.{int(digits[0:2], 16)}.{max(int(digits[2:4], 16), 1)}"


def _condition(kind: str, ready: bool, now: str) -> dict:
    condition = {"type": kind, "status": "True" if ready else "False", "lastTransitionTime": now}
    if not ready:
        condition["reason"] = "ContainersNotReady"
    return condition


def pending_status(pod: dict, now: str) -> dict:
    """Scheduled, containers still being created."""
    statuses = [{
        "name": container["name"], "image": container["image"], "imageID": "", "ready": False,
        "restartCount": 0, "started": False, "state": {"waiting": {"reason": "ContainerCreating"}},
    } for container in _containers(pod)]
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                       _condition("Ready", False, now), _condition("ContainersReady", False, now)],
        "hostIP": "10.0.0.10",
        "containerStatuses": statuses,
        "startTime": now,
    }


def running_status(pod: dict, now: str, restarts: int) -> dict:
    """Running; ready unless an image is broken, in which case its containers crash-loop."""
    statuses = []
    for container in _containers(pod):
        broken = is_broken_image(container["image"])
        status = {
            "name": container["name"], "image": container["image"],
            "imageID": f"{container['image']}@sha256:{hashlib.sha256(container['image'].encode()).hexdigest()}",
            "ready": not broken, "started": not broken, "restartCount": restarts if broken else 0,
        }
        if broken:
            status["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": (
                f"back-off 10s restarting failed container={container['name']} pod={pod['metadata']['name']}")}}
            status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
        else:
            status["state"] = {"running": {"startedAt": now}}
        statuses.append(status)
    ready = not pod_is_broken(pod)
    previous = pod.get("status") or {}
    return {
        **previous,
        "phase": "Running",
        "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": previous.get("startTime", now)},
                       _condition("Ready", ready, now), _condition("ContainersReady", ready, now)],
        "podIP": _pod_ip(pod),
        "podIPs": [{"ip": _pod_ip(pod)}],
        "containerStatuses": statuses,
    }


def is_ready(pod: dict) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _container(pod: dict, name: str | None) -> dict:
    containers = _containers(pod)
    pod_name = pod["metadata"]["name"]
    if name is None:
        if len(containers) > 1:
            choices = " ".join(c["name"] for c in containers)
            raise bad_request(f"a container name must be specified for pod {pod_name}, choose one of: [{choices}]")
        return containers[0]
    for container in containers:
        if container["name"] == name:
            return container
    raise bad_request(f"container {name} is not valid for pod {pod_name}")


def log_lines(pod: dict, container_name: str | None) -> list[str]:
    """The simulated log of one container, as the kubelet would serve it (400 while not started)."""
    container = _container(pod, container_name)
    pod_name = pod["metadata"]["name"]
    if (pod.get("status") or {}).get("phase") != "Running":
        raise bad_request(f'container "{container["name"]}" in pod "{pod_name}" is waiting to start: '
                          "ContainerCreating")
    started = pod["metadata"]["creationTimestamp"]
    lines = [f"{started} INFO starting {container['name']} (image {container['image']})"]
    if is_broken_image(container["image"]):
        lines.append(f"{started} ERROR Error: application failed to start "
                     f"(simulated by the Slipway sandbox: image tag ends in {BROKEN_TAG_SUFFIX})")
        return lines
    ports = container.get("ports") or [{}]
    port = ports[0].get("containerPort", _DEFAULT_PORT)
    probe = container.get("readinessProbe") or container.get("livenessProbe") or {}
    health_path = (probe.get("httpGet") or {}).get("path", _DEFAULT_HEALTH_PATH)
    return lines + [
        f"{started} INFO configuration loaded",
        f"{started} INFO listening on 0.0.0.0:{port}",
        f'{started} INFO "GET {health_path} HTTP/1.1" 200 ok',
    ]
