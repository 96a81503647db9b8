"""End to end with builds: a real Celery worker, Redis, PostgreSQL, docker-registry and the sandbox cluster.

A release of an application built from a base image fetches its package, builds and pushes the image, and
deploys it by digest.
"""
import gzip
import hashlib
import io
import json
import tarfile
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from deployments.fencing import unfenced
from deployments.models import Environment
from deployments.registry import RegistryClient, registry_access, resolve_digest
from tests.deployments.factories import ApplicationFactory, MembershipFactory, UserFactory, base_image
from tests.workflows.test_pipeline import live_image, wait_final
from workflows.models import Release
from workflows.services import pipeline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

WAR = b"PK\x03\x04 the orders web archive, version 1.0"
WAR_SHA = hashlib.sha256(WAR).hexdigest()


@pytest.fixture(autouse=True)
def registry_settings(settings, registry, tmp_path, quick_pipeline):
    settings.SLIPWAY_REGISTRY = registry.host
    settings.SLIPWAY_PACKAGE_HOSTS = ["127.0.0.1"]
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world(project, sandbox_cluster, worker, registry):
    developer = MembershipFactory(project=project, role="developer", user=UserFactory(username="dev")).user
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=0,
                                     rollout_deadline_seconds=5)
    tomcat = base_image("tomcat")  # the catalog entry (transactional tests flush the migrated one)
    call_command("base_images_seed", registry=registry.host, stdout=io.StringIO())
    tomcat.refresh_from_db()
    app = ApplicationFactory(project=project, name="orders", image="", base_image=tomcat, exposed=True)
    return developer, dev, app


@pytest.fixture
def package_server(http_peer):
    """``start(content, failures)``: serves ``content`` at ``.url``, answering 503 to the first ``failures`` asks."""

    def start(content: bytes, failures: int = 0):
        def answer(request):
            return (503, {}, b"") if len(peer.requests) <= failures else (200, {}, content)

        peer = http_peer(answer)
        peer.url += "/orders.war"
        return peer

    return start


def test_an_uploaded_package_is_built_pushed_and_deployed_by_digest(world, api, registry):
    developer, dev, app = world
    client = api.as_user(developer)
    # given an uploaded package
    upload = client.post("/api/v1/packages/", {"project": "shop", "file": SimpleUploadedFile("ROOT.war", WAR)},
                         format="multipart")
    assert upload.status_code == 201, upload.json()
    # when a release of it is filed to dev (no approvals needed)
    response = client.post("/api/v1/releases/", {
        "application": app.id, "environment": "dev", "version": "1.0", "package": upload.json()["id"],
        "commit": "abc1234", "config": {"env": {"MODE": "dev"}, "files": {"app.properties": "mode=dev\n"}},
    }, format="json")
    assert response.status_code == 201, response.json()
    # then the worker builds, pushes, deploys by digest and verifies
    release = wait_final(Release.objects.get(id=response.json()["id"]))
    assert release.state == "succeeded", release.failure_reason
    repository = f"{registry.host}/shop/orders"
    assert release.image == repository
    assert live_image(app, dev) == f"{repository}@{release.image_digest}"
    assert resolve_digest(f"{repository}:1.0") == release.image_digest
    build_log = release.steps.get(step="build").log
    assert f"sha256 {WAR_SHA}" in build_log and f"pushed {repository}:1.0 as {release.image_digest}" in build_log
    # and the pushed image holds the package at the base's app path, labelled with the release
    registry_client = RegistryClient(registry_access(registry.host))
    manifest = json.loads(registry_client.manifest_get("shop/orders", release.image_digest, image=repository).body)
    config = json.loads(registry_client.blob_get("shop/orders", manifest["config"]["digest"], image=repository))
    with registry_client.blob_download("shop/orders", manifest["layers"][1]["digest"], image=repository) as blob:
        layer = tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.read())))
    assert layer.extractfile(f"{app.base_image.app_path.lstrip('/')}/ROOT.war").read() == WAR
    assert config["config"]["Labels"]["io.slipway.release"] == str(release.id)
    assert config["config"]["Labels"]["org.opencontainers.image.revision"] == "abc1234"
    assert "MODE=dev" in config["config"]["Env"]
    # and building it again (as a retried step would) pushes the same digest
    assert pipeline.STEP_WORK["build"](release, unfenced).fields["image_digest"] == release.image_digest


def test_a_package_url_whose_server_is_busy_is_retried_then_built(world, api, package_server):
    developer, dev, app = world
    server = package_server(WAR, failures=2)

    response = api.as_user(developer).post("/api/v1/releases/", {
        "application": app.id, "environment": "dev", "version": "2.0", "package_url": server.url,
        "package_sha256": WAR_SHA,
    }, format="json")

    assert response.status_code == 201, response.json()
    release = wait_final(Release.objects.get(id=response.json()["id"]))
    assert release.state == "succeeded", release.failure_reason
    builds = list(release.steps.filter(step="build").order_by("attempt").values_list("status", flat=True))
    assert builds == ["retrying", "retrying", "succeeded"]
    assert live_image(app, dev) == f"{release.image}@{release.image_digest}"


def test_a_package_whose_sha256_does_not_match_fails_the_build_with_the_reason(world, api, package_server):
    developer, dev, app = world
    server = package_server(WAR + b" tampered")

    response = api.as_user(developer).post("/api/v1/releases/", {
        "application": app.id, "environment": "dev", "version": "3.0", "package_url": server.url,
        "package_sha256": WAR_SHA,
    }, format="json")

    release = wait_final(Release.objects.get(id=response.json()["id"]))
    assert (release.state, release.failed_step) == ("failed", "build")
    assert f"not the expected {WAR_SHA}" in release.failure_reason
    assert release.steps.filter(step="build").count() == 1, "a permanent error is not retried"
    assert release.revision is None


def test_a_build_layers_the_package_onto_the_base_image_pinned_at_filing(world, api, package_server, registry):
    developer, dev, app = world
    server = package_server(WAR)
    base_image("jboss")  # a second catalog entry, pushed to the registry too
    call_command("base_images_seed", registry=registry.host, stdout=io.StringIO())
    tomcat_digest = resolve_digest(app.base_image.image)
    # given a release filed on tomcat, approved by policy but waiting for its schedule
    response = api.as_user(developer).post("/api/v1/releases/", {
        "application": app.id, "environment": "dev", "version": "4.0", "package_url": server.url,
        "scheduled_at": (timezone.now() + timedelta(hours=1)).isoformat(),
    }, format="json")
    assert response.status_code == 201, response.json()
    release = Release.objects.get(id=response.json()["id"])
    assert (release.package_sha256, release.spec.base_image.digest) == (WAR_SHA, tomcat_digest)
    # when the developer switches the application to another base image, and the tomcat tag moves
    switched = api.as_user(developer).patch(f"/api/v1/applications/{app.id}/", {"base_image": "jboss"}, format="json")
    assert switched.status_code == 200, switched.json()
    tag = app.base_image.image.rsplit(":", 1)[1]
    registry.push_image("slipway/base/tomcat", tag, layers=2)
    Release.objects.filter(id=release.id).update(scheduled_at=None)
    pipeline.lane_advance(application_id=app.id, environment_id=dev.id)
    release = wait_final(release)
    # then the image was built on the tomcat digest that was filed
    assert release.state == "succeeded", release.failure_reason
    client = RegistryClient(registry_access(registry.host))
    manifest = json.loads(client.manifest_get("shop/orders", release.image_digest, image=release.image).body)
    assert manifest["annotations"]["org.opencontainers.image.base.digest"] == tomcat_digest
    assert manifest["annotations"]["org.opencontainers.image.base.name"].startswith(f"{registry.host}/slipway/base/tomcat")
