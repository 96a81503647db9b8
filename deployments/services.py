"""Cluster-side operations: apply, verify, roll back, scale, inspect, decommission.

These are the "cluster half" of every release step. Each is idempotent:
applying the same objects again changes nothing (server-side apply), and a
retried apply for the same release returns the revision it already recorded.
"""
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

from paas_site.errors import ApplicationError, NotFound, PermanentError

from . import manifests
from .choices import RevisionKind
from .kube import ClusterAccess, KubeClient, PodInfo, RolloutStatus, client_for
from .models import Application, Cluster, Environment, Revision

# Objects every application of a namespace shares: never pruned with one app.
SHARED_KINDS = {"Namespace", "ResourceQuota"}
SHARED_NAMES = {("NetworkPolicy", "default-deny-ingress")}
SMOKE_CHECK_TIMEOUT = 10


def cluster_client(cluster: Cluster) -> KubeClient:
    read_timeout = settings.SLIPWAY_CLUSTER_TIMEOUT_SECONDS
    return client_for(
        ClusterAccess(
            name=cluster.name, api_server=cluster.api_server, token=cluster.token,
            ca_certificate=cluster.ca_certificate, kubeconfig=cluster.kubeconfig,
        ),
        timeout=(min(5.0, read_timeout), read_timeout),
    )


def cluster_health(*, cluster_id: int) -> str:
    """The cluster's version string; raises ``TransientError`` when unreachable."""
    return cluster_client(Cluster.objects.get(id=cluster_id)).version()


def default_hostname(application: Application, environment: Environment) -> str | None:
    """The external name of an exposed application (the DNS issue makes this per-zone)."""
    if not application.exposed:
        return None
    return f"{application.name}.{application.project.slug}.{environment.name}.{settings.SLIPWAY_APPS_DOMAIN}"


def revision_live(*, application: Application, environment: Environment) -> Revision | None:
    """What runs in ``environment`` now: the newest revision, unless decommissioned."""
    latest = Revision.objects.filter(application=application, environment=environment).order_by("-number").first()
    return latest if latest and latest.is_live else None


def deployment_apply(
    *, application_id: int, environment_id: int, image: str, config: manifests.ReleaseConfig, release: str,
    hostname: str | None = None,
) -> Revision:
    """Render the application's objects, apply them, and record the revision."""
    application, environment = _load(application_id, environment_id)
    already = Revision.objects.filter(
        application=application, environment=environment, release=release, kind=RevisionKind.APPLY
    ).first() if release else None
    objects = manifests.render(
        application=application, environment=environment, image=image, config=config, release=release,
        allowed_callers=sorted(application.allowed_callers.values_list("name", flat=True)),
        hostname=hostname, ingress_class=environment.cluster.ingress_class,
    )
    client = cluster_client(environment.cluster)
    previous = revision_live(application=application, environment=environment)
    _apply_all(client, objects, previous.manifests if previous and previous != already else [])
    if already:
        return already
    return _record(
        application, environment, RevisionKind.APPLY, objects, release=release, image=image,
        config_hash=config.hash(), replicas=application.replicas,
    )


def deployment_rollback(
    *, application_id: int, environment_id: int, to_revision_id: int | None, release: str = ""
) -> Revision | None:
    """Re-apply an earlier revision exactly; with none to go back to, remove the objects."""
    application, environment = _load(application_id, environment_id)
    if to_revision_id is None:
        return application_decommission(application_id=application_id, environment_id=environment_id, release=release)
    target = Revision.objects.get(id=to_revision_id, application=application, environment=environment)
    if not target.is_live:
        raise ApplicationError(f"Revision #{target.number} is a decommission; there is nothing to roll back to.")
    current = revision_live(application=application, environment=environment)
    _apply_all(cluster_client(environment.cluster), target.manifests, current.manifests if current else [])
    if current and current.kind == RevisionKind.ROLLBACK and current.source_id == target.id:
        return current  # a retried rollback: already recorded
    return _record(
        application, environment, RevisionKind.ROLLBACK, target.manifests, release=release, image=target.image,
        config_hash=target.config_hash, replicas=target.replicas, source=target,
    )


def application_decommission(*, application_id: int, environment_id: int, release: str = "") -> Revision | None:
    """Delete the application's objects from the environment (shared namespace objects stay)."""
    application, environment = _load(application_id, environment_id)
    current = revision_live(application=application, environment=environment)
    if current is None:
        return None
    client = cluster_client(environment.cluster)
    for obj in reversed(current.manifests):
        if not _shared(obj):
            client.delete(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
    return _record(application, environment, RevisionKind.DECOMMISSION, [], release=release)


def deployment_verify(
    *, revision_id: int, poll_interval: float = 1.0, sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RolloutStatus:
    """Wait until the revision's rollout completes, fails, or passes the environment's deadline.

    Then, if the application has a smoke-check URL, GET it. Raises
    ``PermanentError`` naming the reason when verification fails.
    """
    revision = Revision.objects.select_related("application__project", "environment__cluster").get(id=revision_id)
    application, environment = revision.application, revision.environment
    client = cluster_client(environment.cluster)
    namespace = manifests.namespace_name(application, environment)
    deadline = clock() + environment.rollout_deadline_seconds
    while True:
        status = client.rollout_status(namespace, application.name)
        if status.failed:
            raise PermanentError(f"rollout of {application.name} failed: {status.message}")
        if status.done:
            break
        if clock() >= deadline:
            raise PermanentError(
                f"rollout of {application.name} not done after {environment.rollout_deadline_seconds}s: {status.message}"
            )
        sleep(poll_interval)
    if application.smoke_check_url:
        smoke_check(application.smoke_check_url)
    return status


def smoke_check(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=SMOKE_CHECK_TIMEOUT) as response:  # noqa: S310 (http(s) only, model-validated)
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise PermanentError(f"smoke check {url} failed: {getattr(exc, 'reason', exc)}") from None
    if code >= 400:
        raise PermanentError(f"smoke check {url} answered HTTP {code}")


def deployment_scale(*, application_id: int, environment_id: int, replicas: int) -> int:
    """Scale the running Deployment; with autoscaling, only within its bounds.

    Returns the number of replicas before the change.
    """
    application, environment = _load(application_id, environment_id)
    low, high = (application.autoscaling_min, application.autoscaling_max) if application.autoscaling else (0, 100)
    if not low <= replicas <= high:
        bounds = "autoscaling bounds" if application.autoscaling else "allowed range"
        raise ApplicationError(
            f"replicas must be between {low} and {high} (the {bounds} of {application.name}).",
            extra={"fields": {"replicas": [f"must be between {low} and {high}."]}},
        )
    if revision_live(application=application, environment=environment) is None:
        raise ApplicationError(f"{application.name} is not deployed in {environment.name}.", code="not_deployed")
    client = cluster_client(environment.cluster)
    namespace = manifests.namespace_name(application, environment)
    before = client.read("Deployment", application.name, namespace)["spec"].get("replicas", 0)
    client.scale(namespace, application.name, replicas)
    return before


def application_pods(*, application_id: int, environment_id: int) -> list[PodInfo]:
    application, environment = _load(application_id, environment_id)
    selector = ",".join(f"{k}={v}" for k, v in manifests.selector_labels(application, environment).items())
    return cluster_client(environment.cluster).pods(manifests.namespace_name(application, environment), selector)


def pod_logs(*, application_id: int, environment_id: int, pod: str, tail: int) -> str:
    """The last ``tail`` log lines of one of the application's pods (404 for any other pod)."""
    application, environment = _load(application_id, environment_id)
    if pod not in {p.name for p in application_pods(application_id=application_id, environment_id=environment_id)}:
        raise NotFound(f"{application.name} has no pod {pod!r} in {environment.name}.")
    namespace = manifests.namespace_name(application, environment)
    return cluster_client(environment.cluster).pod_logs(namespace, pod, tail)


# -- helpers -------------------------------------------------------------------
def _load(application_id: int, environment_id: int) -> tuple[Application, Environment]:
    application = Application.objects.select_related("project", "base_image").get(id=application_id)
    environment = Environment.objects.select_related("cluster").get(id=environment_id)
    return application, environment


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _shared(obj: dict[str, Any]) -> bool:
    return obj["kind"] in SHARED_KINDS or (obj["kind"], obj["metadata"]["name"]) in SHARED_NAMES


def _apply_all(client: KubeClient, objects: list[dict[str, Any]], previous: list[dict[str, Any]]) -> None:
    """Apply ``objects`` in order, then delete what ``previous`` had and they no longer do."""
    for obj in objects:
        client.apply(obj)
    wanted = {_key(obj) for obj in objects}
    for obj in reversed(previous):
        if _key(obj) not in wanted and not _shared(obj):
            client.delete(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))


@transaction.atomic
def _record(
    application: Application, environment: Environment, kind: str, objects: list[dict[str, Any]], **fields: Any
) -> Revision:
    # Lock the application so concurrent recorders cannot pick the same number.
    Application.objects.select_for_update(no_key=True).get(id=application.id)  # as the pipeline's lane lock
    last = Revision.objects.filter(application=application, environment=environment).order_by("-number").first()
    return Revision.objects.create(
        application=application, environment=environment, number=(last.number + 1) if last else 1, kind=kind,
        manifests=objects, manifests_digest=manifests.manifests_digest(objects), **fields,
    )

