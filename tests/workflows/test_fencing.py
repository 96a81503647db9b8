"""The fencing token of a step: a StepRun attempt that lost its claim writes nothing to the cluster, DNS or the
registry, and records no revision. Real PostgreSQL, the sandbox cluster over HTTP, ``pdns_server`` and
``docker-registry``; the stale attempt is made the way the reaper and a second worker make it."""
import hashlib
import io
import json
import uuid

import pytest
from django.utils import timezone

from deployments import services as deployments
from deployments.base_images import BaseImageSpec, base_image_push
from deployments.builds import BuildSpec, image_build
from deployments.fencing import StaleClaim, unfenced
from deployments.kube import ObjectNotFound
from deployments.manifests import ReleaseConfig
from deployments.models import Environment, Revision
from deployments.packages import FetchedPackage
from deployments.registry import RegistryClient, registry_access
from dns import services as dns
from dns.models import EnvironmentZone, Record, Zone
from paas_site.errors import PermanentError
from tests.deployments.factories import ApplicationFactory, MembershipFactory, deploy_spec
from tests.workflows.factories import PINNED, file_release
from workflows.models import Release, StepRun
from workflows.services import pipeline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
IMAGE = PINNED.format(version="1.0")


@pytest.fixture
def lane(project, sandbox_cluster):
    """A release of ``api`` to ``dev`` put in ``deploying``, its deploy claimed by attempt 1 (no worker runs it)."""
    developer = MembershipFactory(project=project, role="developer").user
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=1)
    app = ApplicationFactory(project=project, name="api", replicas=1, exposed=True)
    release = file_release(actor=developer, application=app, environment=dev)  # waits for an approval: no worker
    Release.objects.filter(id=release.id).update(state="deploying")  # as if approved, started and built
    run = StepRun.objects.create(release=release, step="deploy", attempt=1, status="running",
                                 lease_expires_at=timezone.now())
    return app, dev, release, run


def reaped(run: StepRun) -> StepRun:
    """What a second worker's claim does once the lease expired: the attempt fails, attempt 2 holds the step."""
    StepRun.objects.filter(id=run.id).update(status="failed", error="worker lost (lease expired)")
    StepRun.objects.create(release_id=run.release_id, step=run.step, attempt=run.attempt + 1, status="running")
    return run


def apply(app, dev, fence=unfenced, image=IMAGE) -> Revision:
    return deployments.deployment_apply(
        application_id=app.id, environment_id=dev.id, image=image, config=ReleaseConfig(env={}, files={}),
        release="1", spec=deploy_spec(app, dev, hostname=f"api.shop.{dev.name}.example"), fence=fence,
    )


def read(app, dev, kind="Deployment") -> dict:
    return deployments.cluster_client(dev.cluster).read(kind, app.name, f"shop-{dev.name}")


@pytest.mark.parametrize("change, holds", [
    ("none", True),  # the current, running attempt of a release in the step's state
    ("failed", False),  # the reaper or a later claim ended it
    ("superseded", False),  # a newer attempt claimed the step
    ("moved_on", False),  # the release left the step's state (failed, rolling back)
], ids=["current", "failed", "superseded", "moved-on"])
def test_the_step_fence_holds_only_for_the_current_running_attempt(lane, change, holds):
    _, _, release, run = lane
    if change == "failed":
        StepRun.objects.filter(id=run.id).update(status="failed")
    elif change == "superseded":
        StepRun.objects.create(release=release, step="deploy", attempt=2, status="running")
    elif change == "moved_on":
        Release.objects.filter(id=release.id).update(state="rolling_back")
    fence = pipeline.step_fence(run)
    if holds:
        fence("apply Deployment api")
    else:
        with pytest.raises(StaleClaim, match="deploy attempt 1 of release #\\d+ is no longer the step's claim"):
            fence("apply Deployment api")


def test_a_stale_deploy_applies_nothing_and_records_no_revision(lane):
    app, dev, _, run = lane
    fence = pipeline.step_fence(reaped(run))

    with pytest.raises(StaleClaim, match="stopped before apply Namespace shop-dev"):
        apply(app, dev, fence)

    with pytest.raises(ObjectNotFound):
        read(app, dev, "Namespace")
    assert not Revision.objects.exists()


def test_a_claim_lost_during_the_deploy_stops_at_the_next_write(lane):
    app, dev, _, run = lane
    fence, writes = pipeline.step_fence(run), []

    def reaped_after_the_third_write(what: str) -> None:
        writes.append(what)
        if len(writes) == 4:
            reaped(run)
        fence(what)

    with pytest.raises(StaleClaim):
        apply(app, dev, reaped_after_the_third_write)

    assert len(writes) == 4  # three objects applied, the fourth never sent
    with pytest.raises(ObjectNotFound):
        read(app, dev)
    assert not Revision.objects.exists()


def test_a_stale_rollback_neither_restores_nor_removes_anything(lane):
    app, dev, _, run = lane
    first = apply(app, dev)
    fence = pipeline.step_fence(reaped(run))

    with pytest.raises(StaleClaim, match="stopped before delete"):
        deployments.deployment_rollback(application_id=app.id, environment_id=dev.id, to_revision_id=None,
                                        release="1", fence=fence)

    client = deployments.cluster_client(dev.cluster)
    for obj in first.manifests:  # every object of the revision is still there
        assert client.read(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
    assert list(Revision.objects.values_list("id", flat=True)) == [first.id]


@pytest.fixture
def published(lane, pdns):
    if pdns.process is None or pdns.process.poll() is not None:
        pdns.start()
    pdns.reset()
    _, dev, _, _ = lane
    zone = Zone.objects.create(name=pdns.zone, provider="powerdns", api_url=pdns.api_url, api_key=pdns.api_key,
                               default_ttl=60)
    EnvironmentZone.objects.create(environment=dev, zone=zone)
    return pdns


def test_a_stale_step_neither_publishes_nor_withdraws_a_dns_name(lane, published):
    app, dev, _, run = lane
    name = f"api.shop.{published.zone}"
    fence = pipeline.step_fence(reaped(run))

    with pytest.raises(StaleClaim, match="stopped before change DNS zone"):
        dns.dns_publish(application_id=app.id, environment_id=dev.id, fence=fence)
    assert published.resolve(name, "A") == [] and not Record.objects.exists()

    dns.dns_publish(application_id=app.id, environment_id=dev.id)  # published by the step that holds the lane
    with pytest.raises(StaleClaim):
        dns.dns_unpublish(application_id=app.id, environment_id=dev.id, fence=fence)
    assert published.resolve(name, "A") == ["127.0.0.10"]
    assert Record.objects.count() == 2


def test_a_stale_build_pushes_nothing_to_the_registry(lane, registry):
    _, _, release, _ = lane
    Release.objects.filter(id=release.id).update(state="building")
    run = StepRun.objects.create(release=release, step="build", attempt=1, status="running")
    base = f"base/tomcat-{uuid.uuid4().hex[:8]}"
    client = RegistryClient(registry_access(registry.host))
    base_image_push(client, base, "1", BaseImageSpec(name="tomcat", app_path="/app", config_path="/etc/app",
                                                     port=8080))
    war = b"PK\x03\x04 a web archive"
    package = FetchedPackage(file=io.BytesIO(war), name="ROOT.war", size=len(war),
                             sha256=hashlib.sha256(war).hexdigest())
    target = f"shop/fenced-{uuid.uuid4().hex[:8]}"
    spec = BuildSpec(base_image=f"{registry.host}/{base}:1", repository=f"{registry.host}/{target}", tag="1.0",
                     app_path="/app", config_path="/etc/app")

    with pytest.raises(StaleClaim, match="stopped before push base layer"):
        image_build(spec, package, fence=pipeline.step_fence(reaped(run)))

    assert client.blob_exists(target, next(iter(_layers(client, base))), image=target) is False
    assert not _has_tag(client, target, "1.0")


def _layers(client: RegistryClient, repository: str) -> list[str]:
    manifest = json.loads(client.manifest_get(repository, "1", image=repository).body)
    if "manifests" in manifest:
        manifest = json.loads(client.manifest_get(repository, manifest["manifests"][0]["digest"],
                                                  image=repository).body)
    return [layer["digest"] for layer in manifest["layers"]]


def _has_tag(client: RegistryClient, repository: str, tag: str) -> bool:
    try:
        client.manifest_get(repository, tag, image=f"{repository}:{tag}")
    except PermanentError:
        return False
    return True
