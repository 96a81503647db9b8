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


def template_hash(template: dict) -> str:
    """A stable 10-character `pod-template-hash` for a pod template."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_NAME_ALPHABET[byte % len(_NAME_ALPHABET)] for byte in digest[:10])


def pod_template_hash(pod: dict) -> str | None:
    return (pod["metadata"].get("labels") or {}).get("pod-template-hash")


def new_pod(deployment: dict, pod_template_hash: str) -> dict:
    """A pod for the deployment's current template, owned by the deployment.

    Real pods are owned by a ReplicaSet; the sandbox has no ReplicaSets, so the
    owner reference points at the Deployment (deleting it deletes its pods).
    """
    metadata = deployment["metadata"]
    template = deployment["spec"]["template"]
    template_metadata = template.get("metadata") or {}
    suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
    pod_metadata = {
        "name": f"{metadata['name']}-{pod_template_hash}-{suffix}",
        "labels": {**(template_metadata.get("labels") or {}), "pod-template-hash": pod_template_hash},
        "ownerReferences": [{
            "apiVersion": deployment["apiVersion"],
            "kind": deployment["kind"],
            "name": metadata["name"],
            "uid": metadata["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }],
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
