"""The cluster adapter: a thin layer over the official ``kubernetes`` client.

It never touches the ORM: callers hand it a :class:`ClusterAccess`. Failures
become the project's errors, so callers know whether to retry:
connection errors, timeouts, 429 and 5xx are :class:`TransientError`; other
4xx are :class:`PermanentError` carrying the API server's own message.
One client per cluster is cached; no global kubeconfig is ever loaded.
"""
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, TypeVar

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.config.kube_config import load_kube_config_from_dict
from kubernetes.watch.watch import iter_resp_lines

from paas_site.errors import PermanentError, TransientError
from paas_site.metrics import call_errors_counted

from .kubeconfig import inline_only_problem

FIELD_MANAGER = "slipway"
# Co-owns a Deployment's replicas while Slipway stops applying them (see `_hand_replicas_over`).
REPLICAS_HANDOVER_MANAGER = "slipway-replicas-handover"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
# (connect, read) seconds: a hung API server must not hold a worker forever.
DEFAULT_TIMEOUT = (5.0, 30.0)
# One watch request lasts at most this long (`timeoutSeconds`); the stream is then resumed from the
# last resourceVersion seen. Real API servers end watches after 30-60 minutes and send bookmarks
# about once a minute; shorter requests keep a silently dropped connection from going unnoticed.
WATCH_SECONDS = 60

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ClusterAccess:
    """Everything needed to reach one cluster; built by the services from a Cluster row."""

    name: str
    api_server: str
    token: str = ""
    ca_certificate: str = ""
    kubeconfig: str = ""

    def __repr__(self) -> str:  # never print credentials
        return f"ClusterAccess(name={self.name!r}, api_server={self.api_server!r})"

    @property
    def fingerprint(self) -> str:
        return sha256(json.dumps([self.api_server, self.token, self.ca_certificate, self.kubeconfig]).encode()).hexdigest()


class WatchExpired(Exception):
    """The API server no longer holds the resourceVersion a watch asked for (410 Expired)."""


class ObjectNotFound(PermanentError):
    """The object does not exist in the cluster."""

    status_code = 404
    code = "not_found"


@dataclass(frozen=True)
class RolloutStatus:
    done: bool
    failed: bool
    message: str
    replicas: int = 0
    available_replicas: int = 0


@dataclass(frozen=True)
class PodInfo:
    name: str
    phase: str
    ready: bool
    restarts: int
    image: str
    started_at: str | None
    reason: str


@dataclass(frozen=True)
class ReplicaFigures:
    """A Deployment's replicas as the cluster reports them, not as an application's settings say.

    ``replicas`` are the pods its ReplicaSets run (``status.replicas``), ``ready``
    those ready; ``desired`` is what the HPA decided (``status.desiredReplicas``)
    when one scales it, else ``spec.replicas``.
    """

    replicas: int
    ready: int
    desired: int
    autoscaled: bool


# kind -> (API class, method suffix): the typed client has one method per kind.
_KINDS: dict[str, tuple[type, str]] = {
    "Namespace": (k8s.CoreV1Api, "namespace"),
    "ResourceQuota": (k8s.CoreV1Api, "namespaced_resource_quota"),
    "ConfigMap": (k8s.CoreV1Api, "namespaced_config_map"),
    "Secret": (k8s.CoreV1Api, "namespaced_secret"),
    "Service": (k8s.CoreV1Api, "namespaced_service"),
    "Deployment": (k8s.AppsV1Api, "namespaced_deployment"),
    "Ingress": (k8s.NetworkingV1Api, "namespaced_ingress"),
    "NetworkPolicy": (k8s.NetworkingV1Api, "namespaced_network_policy"),
    "HorizontalPodAutoscaler": (k8s.AutoscalingV2Api, "namespaced_horizontal_pod_autoscaler"),
}


class KubeClient:
    """Operations Slipway performs on one cluster."""

    def __init__(self, access: ClusterAccess, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT):
        self.name = access.name
        self.timeout = timeout
        self._api = k8s.ApiClient(_configuration(access))

    # -- generic objects ------------------------------------------------------
    def apply(self, obj: dict[str, Any]) -> None:
        """Create or update ``obj`` with server-side apply (field manager ``slipway``).

        Forced, on purpose: for the fields Slipway renders the approved release is
        the truth, and a conflict would otherwise stall the deploy. Fields it does
        not render (hand-added labels, an autoscaled Deployment's replicas) stay
        with whoever set them.
        """
        if obj["kind"] == "Deployment" and "replicas" not in obj.get("spec", {}):
            self._hand_replicas_over(obj)
        self._server_side_apply(obj, FIELD_MANAGER, force=True)

    def _server_side_apply(self, obj: dict[str, Any], manager: str, *, force: bool) -> None:
        method, args = self._method("patch", obj["kind"], obj["metadata"])
        self._json(
            f"apply {obj['kind']} {obj['metadata']['name']}",
            method, *args, obj, field_manager=manager, force=force, _content_type=APPLY_PATCH,
        )

    def _hand_replicas_over(self, obj: dict[str, Any]) -> None:
        """Keep the live replica count when a Deployment Slipway scaled becomes autoscaled.

        An API server removes a field its only owner stops applying, and then
        defaults `replicas` to 1: every pod but one would go until the HPA
        scales back up. So, while Slipway still owns the count, a second manager
        applies the same value first (co-owning it, no conflict), as the
        Kubernetes documentation's "transferring ownership" describes; the
        HPA's updates then take it from that manager.
        """
        metadata = obj["metadata"]
        try:
            live = self.read("Deployment", metadata["name"], metadata["namespace"])
        except ObjectNotFound:
            return
        owners = [entry["manager"] for entry in live["metadata"].get("managedFields") or []
                  if "f:replicas" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})]
        if owners != [FIELD_MANAGER]:
            return
        handover = {"apiVersion": obj["apiVersion"], "kind": "Deployment",
                    "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
                    "spec": {"replicas": live["spec"]["replicas"]}}
        self._server_side_apply(handover, REPLICAS_HANDOVER_MANAGER, force=False)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete one object; ``False`` if it was already gone."""
        method, args = self._method("delete", kind, {"name": name, "namespace": namespace})
        try:
            self._json(f"delete {kind} {name}", method, *args)
        except ObjectNotFound:
            return False
        return True

    def read(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        method, args = self._method("read", kind, {"name": name, "namespace": namespace})
        return self._json(f"read {kind} {name}", method, *args)

    # -- deployments ----------------------------------------------------------
    def rollout_status(self, namespace: str, name: str) -> RolloutStatus:
        """kubectl's ``rollout status`` logic, read from the status subresource."""
        return rollout_status_of(self._deployment_status(namespace, name))

    def rollout_follow(
        self, namespace: str, name: str, *, seconds: float, poll_interval: float,
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
    ) -> Iterator[RolloutStatus]:
        """The rollout's status now and after every change, for at most ``seconds``.

        One watch on the Deployment (``fieldSelector=metadata.name=…``) from the resourceVersion
        of the first read, resumed from the last version seen when the server ends a request
        (``timeoutSeconds``, bookmarks move it on); after a 410 Expired it reads the status again
        and watches from there. If the watch itself fails (refused, cut off, not supported), it
        falls back to reading the status every ``poll_interval`` seconds.
        """
        deadline = clock() + seconds
        deployment = self._deployment_status(namespace, name)
        yield rollout_status_of(deployment)
        version, watching = deployment["metadata"]["resourceVersion"], True
        while (remaining := deadline - clock()) > 0:
            if watching:
                opened, events, deleted = clock(), 0, False
                try:
                    for event_type, obj in self._watch_deployment(namespace, name, version, remaining):
                        version, events = obj["metadata"]["resourceVersion"], events + 1
                        if event_type == "DELETED":
                            deleted = True
                            break
                        if event_type != "BOOKMARK":
                            yield rollout_status_of(obj)
                    else:
                        if events or clock() - opened >= min(remaining, WATCH_SECONDS) / 2:
                            continue  # the server ended this request: resume from `version`
                        raise TransientError(f"cluster {self.name}: the watch ended at once, without events")
                except WatchExpired:
                    pass  # read again below, then watch from the new version
                except (TransientError, PermanentError, ValueError) as exc:
                    logger.warning("cluster %s: watching deployment %s failed (%s); polling instead", self.name,
                                   name, exc)
                    watching = False
                    sleep(min(poll_interval, remaining))
                if deleted:
                    raise ObjectNotFound(f"cluster {self.name}: deployment {name} was deleted during its rollout")
            else:
                sleep(min(poll_interval, remaining))
            deployment = self._deployment_status(namespace, name)
            version = deployment["metadata"]["resourceVersion"]
            yield rollout_status_of(deployment)

    def _deployment_status(self, namespace: str, name: str) -> dict[str, Any]:
        return self._json(
            f"read rollout of {name}", k8s.AppsV1Api(self._api).read_namespaced_deployment_status, name, namespace
        )

    def _watch_deployment(self, namespace: str, name: str, version: str,
                          seconds: float) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, object) of the watch events on one Deployment after ``version``, for one request."""
        timeout = max(1, math.ceil(min(seconds, WATCH_SECONDS)))
        with translate_errors(self.name, f"watch rollout of {name}"):
            response = k8s.AppsV1Api(self._api).list_namespaced_deployment(
                namespace, field_selector=f"metadata.name={name}", resource_version=version, watch=True,
                allow_watch_bookmarks=True, timeout_seconds=timeout, _preload_content=False,
                _request_timeout=(self.timeout[0], timeout + self.timeout[1]),
            )
            try:
                for line in iter_resp_lines(response):
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        status = event["object"]
                        if status.get("code") == 410:
                            raise WatchExpired(status.get("message", ""))
                        raise error_for_status(self.name, f"watch rollout of {name}", status.get("code", 0),
                                               json.dumps(status), status.get("reason"))
                    yield event["type"], event["object"]
            finally:
                response.close()
                response.release_conn()

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        self._json(
            f"scale {name}", k8s.AppsV1Api(self._api).patch_namespaced_deployment_scale,
            name, namespace, {"spec": {"replicas": replicas}}, _content_type=MERGE_PATCH,
        )

    def list_deployments(self, label_selector: str) -> list[dict[str, Any]]:
        """Deployments across all namespaces matching ``label_selector``."""
        result = self._json(
            "list deployments", k8s.AppsV1Api(self._api).list_deployment_for_all_namespaces,
            label_selector=label_selector,
        )
        return result["items"]

    def replica_figures(self, label_selector: str) -> dict[tuple[str, str], ReplicaFigures]:
        """By (namespace, name), the figures of the Deployments matching ``label_selector``: two requests."""
        deployments = self.list_deployments(label_selector)
        autoscalers = self._json(
            "list autoscalers", k8s.AutoscalingV2Api(self._api).list_horizontal_pod_autoscaler_for_all_namespaces,
            label_selector=label_selector,
        )["items"]
        scaling = {
            (hpa["metadata"]["namespace"], hpa["spec"]["scaleTargetRef"]["name"]): hpa.get("status") or {}
            for hpa in autoscalers if hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        }
        figures = {}
        for deployment in deployments:
            key = (deployment["metadata"]["namespace"], deployment["metadata"]["name"])
            status, hpa = deployment.get("status") or {}, scaling.get(key)
            figures[key] = ReplicaFigures(
                replicas=status.get("replicas") or 0, ready=status.get("readyReplicas") or 0,
                desired=(hpa.get("desiredReplicas") or 0) if hpa is not None else deployment["spec"].get("replicas", 1),
                autoscaled=hpa is not None,
            )
        return figures

    # -- pods -----------------------------------------------------------------
    def pods(self, namespace: str, label_selector: str) -> list[PodInfo]:
        result = self._json(
            "list pods", k8s.CoreV1Api(self._api).list_namespaced_pod, namespace, label_selector=label_selector
        )
        return [pod_info_of(pod) for pod in result["items"]]

    def pod_logs(self, namespace: str, pod: str, tail_lines: int) -> str:
        return self._call(
            f"read logs of pod {pod}", k8s.CoreV1Api(self._api).read_namespaced_pod_log,
            pod, namespace, tail_lines=tail_lines,
        )

    # -- cluster --------------------------------------------------------------
    def version(self) -> str:
        return self._json("read version", k8s.VersionApi(self._api).get_code)["gitVersion"]

    # -- internals ------------------------------------------------------------
    def _method(self, verb: str, kind: str, metadata: dict[str, Any]) -> tuple[Callable[..., Any], tuple]:
        try:
            api_class, suffix = _KINDS[kind]
        except KeyError:
            raise PermanentError(f"Slipway does not manage objects of kind {kind!r}") from None
        method = getattr(api_class(self._api), f"{verb}_{suffix}")
        namespaced = suffix.startswith("namespaced_")
        return method, (metadata["name"], metadata["namespace"]) if namespaced else (metadata["name"],)

    def _json(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The server's JSON as sent (camelCase, absent fields absent), not the client's model.

        The generated models forbid unknown fields, so a newer API server's
        additions would break parsing; the raw body never does.
        """
        response = self._call(what, method, *args, _preload_content=False, **kwargs)
        return json.loads(response.data)

    def _call(self, what: str, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with call_errors_counted("cluster", self.name, ignore=(ObjectNotFound,)), translate_errors(self.name, what):
            return method(*args, _request_timeout=self.timeout, **kwargs)


def _configuration(access: ClusterAccess) -> k8s.Configuration:
    configuration = k8s.Configuration()
    if access.kubeconfig:
        document = yaml.safe_load(access.kubeconfig)
        problem = inline_only_problem(document)  # also for one stored before the rule existed
        if problem:
            raise PermanentError(f"cluster {access.name}: its kubeconfig is refused: {problem}")
        load_kube_config_from_dict(document, client_configuration=configuration, persist_config=False)
    else:
        configuration.host = access.api_server
        configuration.api_key = {"BearerToken": access.token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        if access.ca_certificate:
            configuration.ca_cert_data = access.ca_certificate
    configuration.retries = 0  # retries belong to the task, with backoff, not to a hidden loop here
    return configuration


@contextmanager
def translate_errors(cluster: str, what: str) -> Iterator[None]:
    try:
        yield
    except ApiException as exc:
        raise error_for_status(cluster, what, exc.status or 0, exc.body, exc.reason) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransientError(f"cluster {cluster} unreachable: {_reason(exc)}") from None


def error_for_status(cluster: str, what: str, status: int, body: str | None, reason: str | None):
    message = _status_message(body) or reason or f"HTTP {status}"
    if status == 0 or status == 429 or status >= 500:
        return TransientError(f"cluster {cluster} unavailable ({what}): HTTP {status}: {message}")
    if status == 404:
        return ObjectNotFound(f"cluster {cluster}: {what}: {message}")
    if status in (401, 403):
        return PermanentError(f"cluster {cluster} refused Slipway's credentials ({what}): {message}")
    if status == 409:
        return TransientError(f"cluster {cluster}: conflict during {what}: {message}")
    return PermanentError(f"cluster {cluster} rejected {what}: {message}")


def _status_message(body: str | None) -> str:
    try:
        return str(json.loads(body or "").get("message", ""))
    except (ValueError, AttributeError):
        return (body or "")[:300]


def _reason(exc: Exception) -> str:
    # urllib3 nests the cause ("<conn object>: Failed to establish…: [Errno 111] Connection refused"); keep its end
    return str(getattr(exc, "reason", None) or exc).rsplit(": ", 1)[-1]


def rollout_status_of(deployment: dict[str, Any]) -> RolloutStatus:
    """Decide from a Deployment's status whether its rollout is done, in progress or failed."""
    metadata, spec, status = deployment["metadata"], deployment.get("spec", {}), deployment.get("status") or {}
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0) or 0
    replicas = status.get("replicas", 0) or 0
    available = status.get("availableReplicas", 0) or 0

    def progress(done: bool, failed: bool, message: str) -> RolloutStatus:
        return RolloutStatus(done=done, failed=failed, message=message, replicas=wanted, available_replicas=available)

    if metadata.get("generation", 0) > status.get("observedGeneration", 0):
        return progress(False, False, "waiting for the deployment spec update to be observed")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return progress(False, True, f"rollout exceeded its progress deadline: {condition.get('message', '')}".strip())
    if updated < wanted:
        return progress(False, False, f"{updated} of {wanted} new replicas updated")
    if replicas > updated:
        return progress(False, False, f"{replicas - updated} old replicas pending termination")
    if available < updated:
        return progress(False, False, f"{available} of {updated} updated replicas available")
    return progress(True, False, f"rolled out: {available} of {wanted} replicas available")


def pod_info_of(pod: dict[str, Any]) -> PodInfo:
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    waiting = [((c.get("state") or {}).get("waiting") or {}).get("reason") for c in containers]
    return PodInfo(
        name=pod["metadata"]["name"],
        phase=status.get("phase", "Unknown"),
        ready=bool(containers) and all(c.get("ready") for c in containers),
        restarts=sum(c.get("restartCount", 0) for c in containers),
        image=(pod.get("spec") or {}).get("containers", [{}])[0].get("image", ""),
        started_at=status.get("startTime"),
        reason=next((reason for reason in waiting if reason), ""),
    )


_clients: dict[str, tuple[str, KubeClient]] = {}
_clients_lock = threading.Lock()


def client_for(access: ClusterAccess, *, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> KubeClient:
    """The cached client of a cluster; rebuilt when its URL, credentials or timeout change."""
    key = f"{access.fingerprint}:{timeout}"
    with _clients_lock:
        cached = _clients.get(access.name)
        if cached is None or cached[0] != key:
            cached = _clients[access.name] = (key, KubeClient(access, timeout=timeout))
        return cached[1]
