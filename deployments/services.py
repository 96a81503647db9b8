"""Cluster-side operations: apply, verify, roll back, scale, inspect, decommission; and image builds:
package uploads, building a release's image, seeding the base-image catalog.

These are the "cluster half" of every release step. Each is idempotent:
applying the same objects again changes nothing (server-side apply), and a
retried apply for the same release returns the revision it already recorded;
a rebuild of the same inputs pushes the same digest.

The lane work among them (a release step, a scale or a decommission) passes
its ``fence``: it is checked immediately before every cluster and registry
write and, under the lane lock, before a revision is recorded, so work that
lost its claim stops there (see ``fencing.py``).
"""
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from typing import Any

import requests
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from paas_site import outbound
from paas_site.actors import DEPLOY, Actor
from paas_site.errors import ApplicationError, ExternalError, NotFound, PermanentError, invalid_fields

from . import builds, changes, locks, manifests, middleware, packages, preflight
from .base_images import BaseImageSpec, base_image_push
from .choices import RevisionKind
from .fencing import Fence, unfenced
from .images import parse_image_reference
from .kube import ClusterAccess, KubeClient, PodInfo, ReplicaFigures, RolloutStatus, client_for
from .models import (
    Application,
    BaseImage,
    Cluster,
    Environment,
    MiddlewareCredentials,
    MiddlewareInstance,
    Package,
    Project,
    Revision,
)
from .permissions import Action, project_require
from .registry import RegistryClient, registry_access
from .specs import DeploySpec, PinnedBaseImage, spec_build

# Objects every application of a namespace shares: never pruned with one app.
SHARED_KINDS = {"Namespace", "ResourceQuota"}
SHARED_NAMES = {("NetworkPolicy", "default-deny-ingress")}
SMOKE_CHECK_TIMEOUT = 10


# The console's live figures wait this long for a cluster at the most: a page must not hang on one
FIGURES_TIMEOUT_SECONDS = 3.0


def cluster_client(cluster: Cluster, *, read_timeout: float | None = None) -> KubeClient:
    read_timeout = read_timeout or settings.SLIPWAY_CLUSTER_TIMEOUT_SECONDS
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
    *, application_id: int, environment_id: int, spec: DeploySpec, image: str, config: manifests.ReleaseConfig,
    release: str, fence: Fence = unfenced,
) -> Revision:
    """Render the objects of a release's frozen spec, apply them, and record the revision (with the spec)."""
    application, environment = _load(application_id, environment_id)
    already = Revision.objects.filter(
        application=application, environment=environment, release=release, kind=RevisionKind.APPLY
    ).first() if release else None
    for used in spec.uses:
        instance = Application.objects.filter(project=application.project, name=used.name).first()
        if instance is None or revision_live(application=instance, environment=environment) is None:
            # its pods would wait for the instance's Secret until the rollout deadline; say why at once
            raise PermanentError(f"{application.name} uses the middleware instance {used.name}, which is not "
                                 f"deployed in {environment.name}: release it there first")
    objects = manifests.render(spec=spec, image=image, config=config, release=release)
    preflight.manifests_check(objects)  # refused before the first object reaches the cluster
    client = cluster_client(_cluster_of(spec, environment))
    previous = revision_live(application=application, environment=environment)
    _apply_all(client, objects, previous.manifests if previous and previous != already else [],
               application=application, environment=environment, fence=fence)
    if already:
        return already
    return _record(
        application, environment, RevisionKind.APPLY, objects, fence=fence, release=release, image=image,
        config_hash=config.hash(), replicas=spec.replicas, spec=spec.to_json(),
    )


def deployment_rollback(
    *, application_id: int, environment_id: int, to_revision_id: int | None, release: str = "",
    fence: Fence = unfenced,
) -> Revision | None:
    """Re-apply an earlier revision exactly; with none to go back to, remove the objects."""
    application, environment = _load(application_id, environment_id)
    if to_revision_id is None:
        return application_decommission(application_id=application_id, environment_id=environment_id, release=release,
                                        fence=fence)
    target = Revision.objects.get(id=to_revision_id, application=application, environment=environment)
    if not target.is_live:
        raise ApplicationError(f"Revision #{target.number} is a decommission; there is nothing to roll back to.")
    current = revision_live(application=application, environment=environment)
    spec = DeploySpec.from_json(target.spec) if target.spec else None
    _apply_all(cluster_client(_cluster_of(spec, environment)), target.manifests,
               current.manifests if current else [], application=application, environment=environment, fence=fence)
    if current and current.kind == RevisionKind.ROLLBACK and current.source_id == target.id:
        return current  # a retried rollback: already recorded
    return _record(
        application, environment, RevisionKind.ROLLBACK, target.manifests, fence=fence, release=release,
        image=target.image, config_hash=target.config_hash, replicas=target.replicas, source=target,
        spec=target.spec,
    )


def application_decommission(
    *, application_id: int, environment_id: int, release: str = "", fence: Fence = unfenced
) -> Revision | None:
    """Delete the application's objects from the environment (shared namespace objects stay)."""
    application, environment = _load(application_id, environment_id)
    current = revision_live(application=application, environment=environment)
    if current is None:
        return None
    client = cluster_client(environment.cluster)
    for obj in reversed(current.manifests):
        if not _shared(obj):
            _delete(client, obj, fence)
    return _record(application, environment, RevisionKind.DECOMMISSION, [], fence=fence, release=release)


def deployment_verify(
    *, revision_id: int, poll_interval: float = 1.0, sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic, still_held: Fence = unfenced,
) -> RolloutStatus:
    """Follow the revision's rollout until it completes, fails, or passes the deadline of its spec.

    It follows by watch (see ``KubeClient.rollout_follow``), so the verdict comes as soon as the
    cluster reports it; ``poll_interval`` paces the reads only when watching fails. Then, if the
    spec has a smoke-check URL, GET it. Raises ``PermanentError`` naming the reason when
    verification fails. Everything comes from the spec the revision was applied from, not from
    the application as it is now. ``still_held`` is asked at every status whether the work may go on
    (a step handed over or reaped stops there, ``StaleClaim``).
    """
    revision = Revision.objects.select_related("application__project", "environment__cluster").get(id=revision_id)
    spec = revision_spec(revision)
    client = cluster_client(_cluster_of(spec, revision.environment))
    statuses = client.rollout_follow(spec.namespace, spec.application, seconds=spec.rollout_deadline_seconds,
                                     poll_interval=poll_interval, clock=clock, sleep=sleep)
    with closing(statuses):
        for status in statuses:
            still_held("following the rollout")
            if status.failed:
                raise PermanentError(f"rollout of {spec.application} failed: {status.message}")
            if status.done:
                break
        else:
            raise PermanentError(
                f"rollout of {spec.application} not done after {spec.rollout_deadline_seconds}s: {status.message}"
            )
    if spec.smoke_check_url:
        smoke_check(spec.smoke_check_url)
    return status


def revision_spec(revision: Revision) -> DeploySpec:
    """The spec a revision was applied from; for one recorded before specs were kept, the rows as they are."""
    if revision.spec:
        return DeploySpec.from_json(revision.spec)
    application, environment = revision.application, revision.environment
    return spec_build(application, environment, namespace=manifests.namespace_name(application, environment),
                      cluster=environment.cluster)


def smoke_check(url: str) -> None:
    """GET ``url`` through the guarded client (redirects only on the same origin); a 4xx/5xx fails."""
    try:
        with outbound.GuardedSession() as session:
            with session.get(url, timeout=SMOKE_CHECK_TIMEOUT, stream=True) as response:
                code = response.status_code
    except outbound.OutboundRefused as exc:
        raise PermanentError(f"smoke check {url} failed: {exc.message}") from None
    except requests.RequestException as exc:
        raise PermanentError(outbound.unreachable(f"smoke check {url}", exc).message) from None
    if code >= 400:
        raise PermanentError(f"smoke check {url} answered HTTP {code}")


def deployment_scale(*, application_id: int, environment_id: int, replicas: int, fence: Fence = unfenced) -> int:
    """Scale the running Deployment; with autoscaling, only within the bounds of the approved revision.

    The bounds are those of the spec the live revision runs (what was approved), never of the
    application row, which a developer may edit without a release. Returns the replicas before.
    """
    application, environment = _load(application_id, environment_id)
    live = revision_live(application=application, environment=environment)
    if live is None:
        raise ApplicationError(f"{application.name} is not deployed in {environment.name}.", code="not_deployed")
    spec = revision_spec(live)
    low, high = (spec.autoscaling_min, spec.autoscaling_max) if spec.autoscaling else (0, 100)
    if not low <= replicas <= high:
        bounds = f"autoscaling bounds of revision #{live.number}" if spec.autoscaling else "allowed range"
        raise ApplicationError(
            f"replicas must be between {low} and {high} (the {bounds} of {application.name}).",
            extra={"fields": {"replicas": [f"must be between {low} and {high}."]}},
        )
    client = cluster_client(environment.cluster)
    namespace = manifests.namespace_name(application, environment)
    before = client.read("Deployment", application.name, namespace)["spec"].get("replicas", 0)
    fence(f"scale Deployment {application.name}")
    client.scale(namespace, application.name, replicas)
    return before


def application_pods(*, actor: Actor, application_id: int, environment_id: int) -> list[PodInfo]:
    """The application's pods in one environment, for those who may list them."""
    application, environment = _load(application_id, environment_id)
    project_require(actor, Action.POD_LIST, application.project)
    return _pods(application, environment)


def _pods(application: Application, environment: Environment) -> list[PodInfo]:
    selector = ",".join(f"{k}={v}" for k, v in manifests.selector_labels(application, environment).items())
    return cluster_client(environment.cluster).pods(manifests.namespace_name(application, environment), selector)


def replica_figures(*, lanes: Iterable[tuple[Application, Environment]]) -> dict[tuple[int, int], ReplicaFigures | str]:
    """Live replicas of the (application, environment) lanes, read from their clusters (two requests per cluster).

    A lane whose Deployment the cluster does not have is left out; every lane of
    a cluster that did not answer maps to the reason.
    """
    by_cluster: dict[Cluster, list[tuple[Application, Environment]]] = defaultdict(list)
    for application, environment in lanes:
        by_cluster[environment.cluster].append((application, environment))
    figures: dict[tuple[int, int], ReplicaFigures | str] = {}
    for cluster, members in by_cluster.items():
        try:
            found = cluster_client(cluster, read_timeout=FIGURES_TIMEOUT_SECONDS).replica_figures(
                f"{manifests.MANAGED_BY_LABEL}={manifests.MANAGED_BY}")
        except ExternalError as exc:
            figures |= {(application.id, environment.id): exc.message for application, environment in members}
            continue
        for application, environment in members:
            key = (manifests.namespace_name(application, environment), application.name)
            if key in found:
                figures[(application.id, environment.id)] = found[key]
    return figures


def lane_replicas(*, application: Application, environment: Environment) -> tuple[ReplicaFigures | None, str]:
    """One lane's live replicas from its cluster: (figures or None when nothing runs, why the cluster did not say)."""
    found = replica_figures(lanes=[(application, environment)]).get((application.id, environment.id))
    return (None, found) if isinstance(found, str) else (found, "")


def pod_logs(*, actor: Actor, application_id: int, environment_id: int, pod: str, tail: int) -> str:
    """The last ``tail`` log lines of one of the application's pods (404 for any other pod)."""
    application, environment = _load(application_id, environment_id)
    project_require(actor, Action.POD_LOGS, application.project)
    if pod not in {p.name for p in _pods(application, environment)}:
        raise NotFound(f"{application.name} has no pod {pod!r} in {environment.name}.")
    namespace = manifests.namespace_name(application, environment)
    return cluster_client(environment.cluster).pod_logs(namespace, pod, tail)


# -- helpers -------------------------------------------------------------------
def _cluster_of(spec: DeploySpec | None, environment: Environment) -> Cluster:
    """The cluster a spec was filed for (the environment's when it names none)."""
    if spec is None or spec.cluster_id is None or spec.cluster_id == environment.cluster_id:
        return environment.cluster
    return Cluster.objects.get(id=spec.cluster_id)


def _load(application_id: int, environment_id: int) -> tuple[Application, Environment]:
    application = Application.objects.select_related("project", "base_image").get(id=application_id)
    environment = Environment.objects.select_related("cluster").get(id=environment_id)
    return application, environment


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _shared(obj: dict[str, Any]) -> bool:
    return obj["kind"] in SHARED_KINDS or (obj["kind"], obj["metadata"]["name"]) in SHARED_NAMES


def _apply_all(
    client: KubeClient, objects: list[dict[str, Any]], previous: list[dict[str, Any]], *,
    application: Application, environment: Environment, fence: Fence,
) -> None:
    """Apply ``objects`` in order, then delete what ``previous`` had and they no longer do.

    A Secret is applied with its values filled in: revisions hold it redacted.
    """
    for obj in objects:
        if obj["kind"] == "Secret":
            obj = manifests.secret_filled(obj, _secret_values(obj, application, environment))
        fence(f"apply {obj['kind']} {obj['metadata']['name']}")
        client.apply(obj)
    wanted = {_key(obj) for obj in objects}
    for obj in reversed(previous):
        if _key(obj) not in wanted and not _shared(obj):
            _delete(client, obj, fence)


def _delete(client: KubeClient, obj: dict[str, Any], fence: Fence) -> None:
    fence(f"delete {obj['kind']} {obj['metadata']['name']}")
    client.delete(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))


def _instance_connection(application: Application, environment: Environment) -> dict[str, str]:
    """A middleware instance's connection settings in an environment, secrets and all: for the cluster only.

    The secrets are generated on the instance's first deploy to the environment
    (so each environment has its own) and kept encrypted; the audit trail
    records that they were generated, never what they are.
    """
    instance = MiddlewareInstance.objects.get(application=application)
    with transaction.atomic():
        credentials, created = MiddlewareCredentials.objects.get_or_create(
            instance=instance, environment=environment,
            defaults={"secrets": json.dumps(middleware.secrets_generate(instance.spec))},
        )
        if created:
            changes.recorder().object_created(actor=DEPLOY, obj=credentials)
    return middleware.connection_settings(
        instance.spec, host=application.name, variables=instance.variables, secrets=credentials.values
    )


def _secret_values(secret: dict[str, Any], application: Application, environment: Environment) -> dict[str, str]:
    name = secret["metadata"]["name"]
    if name == middleware.connection_secret_name(application.name):
        try:
            return _instance_connection(application, environment)
        except MiddlewareInstance.DoesNotExist:
            pass
    raise PermanentError(f"Secret {name} has no values Slipway can fill in: it applies only the connection Secret "
                         "of a middleware instance")


@transaction.atomic
def _record(
    application: Application, environment: Environment, kind: str, objects: list[dict[str, Any]], *, fence: Fence,
    **fields: Any,
) -> Revision:
    # Under the lane lock: concurrent recorders cannot pick the same number, and the claim checked here
    # cannot go stale before this commits (every change of a claim holds the same lock).
    locks.lane_lock(application.id)
    fence(f"record a {kind} revision of {application.name}")
    last = Revision.objects.filter(application=application, environment=environment).order_by("-number").first()
    return Revision.objects.create(
        application=application, environment=environment, number=(last.number + 1) if last else 1, kind=kind,
        manifests=objects, manifests_digest=manifests.manifests_digest(objects), **fields,
    )



# -- image builds ---------------------------------------------------------------------
def build_repository(application: Application) -> str:
    """Where Slipway pushes the images it builds for an application: ``{registry}/{project}/{application}``."""
    if not settings.SLIPWAY_REGISTRY:
        raise ApplicationError("No registry to push built images to is configured (SLIPWAY_REGISTRY): "
                               "ask a platform admin.", code="registry_not_configured")
    return f"{settings.SLIPWAY_REGISTRY}/{application.project.slug}/{application.name}"


@transaction.atomic
def package_upload(*, project: Project, file: UploadedFile, actor: Actor) -> Package:
    """Store an uploaded package with its sha256 (project developers and maintainers)."""
    project_require(actor, Action.UPLOAD_PACKAGE, project)
    problem = packages.package_name_check(file.name)
    if problem:
        raise invalid_fields({"file": [f"the name {problem}"]})
    limit = settings.SLIPWAY_PACKAGE_MAX_BYTES
    if file.size > limit:
        raise invalid_fields({"file": [f"is {file.size} bytes; the limit is {limit} bytes."]})
    hasher = hashlib.sha256()
    for chunk in file.chunks():
        hasher.update(chunk)
    file.seek(0)
    package = Package(project=project, filename=file.name, size=file.size, sha256=hasher.hexdigest(),
                      uploaded_by=actor)
    package.file.save(package.sha256, file, save=False)
    package.save()
    changes.recorder().object_created(actor=actor, obj=package)
    return package


@contextmanager
def package_fetch(*, package_id: int | None, url: str = "", sha256: str = "") -> Iterator[packages.FetchedPackage]:
    """The package of a release, open for reading: a stored upload, or downloaded from its URL."""
    if package_id is None:
        with packages.package_download(url, sha256=sha256) as fetched:
            yield fetched
        return
    package = Package.objects.get(id=package_id)
    try:
        stored = package.file.open("rb")
    except OSError as exc:
        raise PermanentError(f"stored package {package.filename} cannot be read: {exc.strerror or exc}") from None
    with stored, packages.package_stored(stored, name=package.filename, size=package.size,
                                         sha256=package.sha256) as fetched:
        yield fetched


def application_image_build(
    *, base_image: PinnedBaseImage | None, repository: str, version: str, package: packages.FetchedPackage,
    config_files: Mapping[str, str], env: Mapping[str, str], labels: Mapping[str, str], fence: Fence = unfenced,
) -> builds.BuiltImage:
    """Build and push ``repository:version`` from the package and the base image a release froze (by digest)."""
    if base_image is None:
        raise PermanentError(f"{repository} has no base image to build on")
    spec = builds.BuildSpec(
        base_image=base_image.pinned, repository=repository, tag=version, app_path=base_image.app_path,
        config_path=base_image.config_path, config_files=config_files, env=env, labels=labels,
    )
    return builds.image_build(spec, package, fence=fence)


def base_images_seed(*, registry: str, actor: Actor) -> list[tuple[BaseImage, str, bool]]:
    """Push the catalog's base images to ``registry`` and point the catalog at them (audited); idempotent.

    Returns ``(base image, digest, changed)`` per catalog entry.
    """
    client = RegistryClient(registry_access(registry))
    results = []
    for base in BaseImage.objects.order_by("name"):
        try:
            tag = parse_image_reference(base.image).tag or "1"
        except ValueError:
            tag = "1"
        repository = f"slipway/base/{base.name}"
        digest = base_image_push(client, repository, tag, BaseImageSpec(
            name=base.name, app_path=base.app_path, config_path=base.config_path, port=base.default_port,
        ))
        pointed, changed = _base_image_point(base.id, f"{registry}/{repository}:{tag}", actor)
        results.append((pointed, digest, changed))
    return results


@transaction.atomic
def _base_image_point(base_image_id: int, image: str, actor: Actor) -> tuple[BaseImage, bool]:
    base = locks.row_lock(BaseImage.objects.all(), base_image_id)
    if base.image == image:
        return base, False
    before = changes.recorder().snapshot(base)
    base.image = image
    base.save(update_fields=["image"])
    changes.recorder().object_changed(actor=actor, obj=base, before=before)
    return base, True
