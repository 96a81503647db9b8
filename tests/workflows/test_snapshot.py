"""What a release freezes when it is filed (no worker): digests and sha256 pinned at filing, the deploy
spec in the snapshot and its fingerprint, and what approvers and developers are told when the application
changes afterwards. Real PostgreSQL, the real docker-registry and a real HTTP peer for package URLs."""
import hashlib
import socket

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from deployments.models import Environment
from tests.deployments.factories import ApplicationFactory, ClusterFactory, MembershipFactory, UserFactory, base_image
from tests.workflows.factories import PINNED, file_release
from workflows import services
from workflows.models import Approval, Release

pytestmark = pytest.mark.django_db

WAR = b"PK\x03\x04 the orders web archive"
WAR_SHA = hashlib.sha256(WAR).hexdigest()


@pytest.fixture
def prod(db):
    return Environment.objects.create(name="prod", cluster=ClusterFactory(), required_approvals=2)


@pytest.fixture
def app(project):
    return ApplicationFactory(project=project, name="api", image="registry.example.com/shop/api", replicas=1,
                              cpu_request="100m", cpu_limit="500m")


@pytest.fixture
def approvers(project):
    return [MembershipFactory(project=project, role="approver", user=UserFactory(username=f"appr{i}")).user
            for i in (1, 2)]


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- digests and bytes pinned at filing ------------------------------------------------------------------
def test_a_tag_is_resolved_to_its_digest_at_filing_and_a_moved_tag_changes_nothing(api, developer, project, prod,
                                                                                     registry):
    app = ApplicationFactory(project=project, name="web", image=f"{registry.host}/shop/web")
    first = registry.push_image("shop/web", "1.0")

    response = api.as_user(developer).post("/api/v1/releases/", {
        "application": app.id, "environment": "prod", "version": "1.0"}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["image"], body["image_digest"]) == (f"{registry.host}/shop/web:1.0", first)
    release = Release.objects.get(id=body["id"])
    fingerprint = release.fingerprint
    # when the tag is pushed again (someone else's bytes), the filed release keeps what approvers see
    moved = registry.push_image("shop/web", "1.0", layers=2)
    assert moved != first
    release.refresh_from_db()
    assert (release.image_digest, release.pinned_image, release.fingerprint) == (
        first, f"{registry.host}/shop/web:1.0@{first}", fingerprint)


def test_an_unreachable_registry_is_a_503_try_again_and_files_nothing(api, developer, project, prod, settings):
    unreachable = f"127.0.0.1:{closed_port()}"
    settings.SLIPWAY_REGISTRIES = [*settings.SLIPWAY_REGISTRIES, unreachable]  # allowed, just down
    app = ApplicationFactory(project=project, name="web", image=f"{unreachable}/shop/web")

    response = api.as_user(developer).post("/api/v1/releases/", {
        "application": app.id, "environment": "prod", "version": "1.0"}, format="json")

    assert response.status_code == 503, response.json()
    assert response.json()["code"] == "registry_unavailable"
    assert "try again" in response.json()["message"] and "image" in response.json()["extra"]["fields"]
    assert not Release.objects.exists()


def test_a_tag_missing_from_the_registry_is_a_400_naming_the_image(api, developer, project, prod, registry):
    app = ApplicationFactory(project=project, name="web", image=f"{registry.host}/shop/web")

    response = api.as_user(developer).post("/api/v1/releases/", {
        "application": app.id, "environment": "prod", "version": "9.9"}, format="json")

    assert response.status_code == 400, response.json()
    assert "not found" in response.json()["extra"]["fields"]["image"][0]
    assert not Release.objects.exists()


def test_the_base_image_is_pinned_at_filing_and_an_unreachable_base_registry_is_a_503(
    api, developer, project, prod, registry, settings
):
    settings.SLIPWAY_REGISTRY = registry.host
    settings.SLIPWAY_PACKAGE_HOSTS = ["artifacts.example.com"]
    base = base_image("tomcat")
    base.image = f"{registry.host}/slipway/base/tomcat:10.1"
    base.save()
    digest = registry.push_image("slipway/base/tomcat", "10.1")
    built = ApplicationFactory(project=project, name="orders", image="", base_image=base)

    release = services.release_file(actor=developer, application=built, environment=prod, version="1",
                                    package_url="https://artifacts.example.com/o.war", package_sha256=WAR_SHA)
    assert release.spec.base_image.digest == digest
    assert release.spec.base_image.pinned == f"{registry.host}/slipway/base/tomcat:10.1@{digest}"

    base.image = f"127.0.0.1:{closed_port()}/slipway/base/tomcat:10.1"
    base.save()
    response = api.as_user(developer).post("/api/v1/releases/", {
        "application": built.id, "environment": "prod", "version": "2",
        "package_url": "https://artifacts.example.com/o.war", "package_sha256": WAR_SHA}, format="json")
    assert response.status_code == 503, response.json()
    assert "base_image" in response.json()["extra"]["fields"]
    assert Release.objects.count() == 1


def test_a_package_url_without_sha256_is_fetched_and_hashed_at_filing(api, developer, project, prod, http_peer,
                                                                       settings):
    settings.SLIPWAY_REGISTRY = "registry.internal:5000"
    peer = http_peer(lambda request: (200, {"Content-Type": "application/octet-stream"}, WAR))
    settings.SLIPWAY_PACKAGE_HOSTS = ["127.0.0.1"]
    built = ApplicationFactory(project=project, name="orders", image="", base_image=base_image("tomcat"))

    response = api.as_user(developer).post("/api/v1/releases/", {
        "application": built.id, "environment": "prod", "version": "1",
        "package_url": f"{peer.url}/orders.war"}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["package_sha256"] == WAR_SHA
    assert [(method, path) for method, path, _ in peer.requests] == [("GET", "/orders.war")]


def test_a_package_url_that_cannot_be_fetched_for_hashing_files_nothing(api, developer, project, prod, http_peer,
                                                                        settings):
    settings.SLIPWAY_REGISTRY = "registry.internal:5000"
    settings.SLIPWAY_PACKAGE_HOSTS = ["127.0.0.1"]
    built = ApplicationFactory(project=project, name="orders", image="", base_image=base_image("tomcat"))
    missing = http_peer(lambda request: (404, {}, b"no such package"))

    unreachable = api.as_user(developer).post("/api/v1/releases/", {
        "application": built.id, "environment": "prod", "version": "1",
        "package_url": f"http://127.0.0.1:{closed_port()}/orders.war"}, format="json")
    not_found = api.as_user(developer).post("/api/v1/releases/", {
        "application": built.id, "environment": "prod", "version": "1",
        "package_url": f"{missing.url}/orders.war"}, format="json")

    assert unreachable.status_code == 503, unreachable.json()
    assert "package_url" in unreachable.json()["extra"]["fields"]
    assert not_found.status_code == 400 and "HTTP 404" in not_found.json()["extra"]["fields"]["package_url"][0]
    assert not Release.objects.exists()


# -- the snapshot and its fingerprint -------------------------------------------------------------------
def test_the_snapshot_holds_every_input_that_reaches_the_cluster(developer, project, prod):
    caller = ApplicationFactory(project=project, name="web")
    app = ApplicationFactory(project=project, name="api", image="registry.example.com/shop/api", replicas=3,
                             port=9000, health_path="/ready", exposed=True, smoke_check_url="https://api.example.com/")
    app.allowed_callers.set([caller])

    spec = file_release(actor=developer, application=app, environment=prod).snapshot["spec"]

    assert {key: spec[key] for key in ("project", "application", "environment", "namespace", "cluster", "port",
                                       "health_path", "replicas", "exposed", "smoke_check_url", "allowed_callers",
                                       "rollout_deadline_seconds", "ingress_class")} == {
        "project": "shop", "application": "api", "environment": "prod", "namespace": "shop-prod",
        "cluster": prod.cluster.name, "port": 9000, "health_path": "/ready", "replicas": 3, "exposed": True,
        "smoke_check_url": "https://api.example.com/", "allowed_callers": ["web"], "rollout_deadline_seconds": 300,
        "ingress_class": "nginx",
    }
    assert spec["hostname"] == "api.shop.prod.apps.slipway.internal"
    assert spec["quota"]["requests.cpu"] == "8"
    assert (spec["cpu_request"], spec["memory_limit"]) == ("100m", "256Mi")


def test_the_fingerprint_covers_the_deploy_spec_and_an_approval_for_another_fingerprint_never_counts(
    api, developer, app, prod, approvers
):
    # given a release approved once for 1 replica
    small = file_release(actor=developer, application=app, environment=prod)
    services.approval_grant(release_id=small.id, actor=approvers[0])
    # when the application is raised to 20 replicas × 4 CPUs and the same version is filed again
    response = api.as_user(developer).patch(f"/api/v1/applications/{app.id}/", {
        "replicas": 20, "cpu_request": "4", "cpu_limit": "4"}, format="json")
    assert response.status_code == 200, response.json()
    big = file_release(actor=developer, application=app, environment=prod)
    # then the two releases have different fingerprints, although artifact and config are the same
    assert (small.image, small.config_hash) == (big.image, big.config_hash)
    assert small.fingerprint != big.fingerprint
    # and the first approval, carried over to the big release, does not count for it
    first = Approval.objects.get(release=small)
    Approval.objects.create(release=big, approver=approvers[0], decision="approve", fingerprint=first.fingerprint)
    services.approval_grant(release_id=big.id, actor=approvers[1])
    big.refresh_from_db()
    assert big.state == "requested"
    services.approval_grant(release_id=small.id, actor=approvers[1])
    small.refresh_from_db()
    assert small.state == "approved"


def test_editing_the_application_leaves_open_releases_as_filed_and_says_so(api, developer, app, prod):
    # given a release filed for 1 replica of 0.1 CPU
    release = file_release(actor=developer, application=app, environment=prod)
    before = api.as_user(developer).get(f"/api/v1/releases/{release.id}/").json()
    assert before["application_changed"] is False and before["application_changes"] == []
    # when the developer raises the application afterwards
    api.as_user(developer).patch(f"/api/v1/applications/{app.id}/", {
        "replicas": 20, "cpu_request": "4", "cpu_limit": "4", "exposed": True}, format="json")
    # then the release still says what was filed, the cost impact too, and the change is flagged
    body = api.as_user(developer).get(f"/api/v1/releases/{release.id}/").json()
    assert body["snapshot"]["spec"]["replicas"] == 1 and body["snapshot"]["spec"]["cpu_request"] == "100m"
    assert body["application_changed"] is True
    assert {"replicas", "cpu_request", "cpu_limit", "exposed", "hostname"} <= set(body["application_changes"])
    assert body["cost_impact"]["proposed"]["replicas"] == 1
    assert body["fingerprint"] == before["fingerprint"] and body["fingerprint_short"] == before["fingerprint"][:12]


def test_approvers_see_the_short_fingerprint_and_the_change_notice_in_console_and_admin(
    client, developer, app, prod, approvers, api
):
    release = file_release(actor=developer, application=app, environment=prod)
    api.as_user(developer).patch(f"/api/v1/applications/{app.id}/", {"replicas": 20}, format="json")
    approver = approvers[0]
    approver.is_staff = True
    approver.save()
    approver.user_permissions.add(Permission.objects.get(codename="view_release", content_type__app_label="workflows"))
    client.force_login(approver)

    page = client.get(reverse("console:release-detail", args=[release.id])).content.decode()
    queue = client.get(reverse("console:approvals")).content.decode()
    admin = client.get(reverse("admin:workflows_release_change", args=[release.id])).content.decode()

    assert release.fingerprint_short in page and release.fingerprint_short in queue
    assert release.fingerprint_short in admin and "The application changed after this release was filed" in admin
    assert "The application changed after this release was filed (replicas)" in page
    assert "file again to deploy the change" in page
    review = page[page.index('id="review-heading"'):]
    assert '<th scope="row">Replicas</th><td>–</td><td>1</td>' in review, review


def test_a_rollback_release_snapshots_the_revision_it_restores(developer, app, prod):
    from deployments.models import Revision

    # given two revisions recorded by two succeeded releases (1 then 3 replicas)
    first = file_release(actor=developer, application=app, environment=prod, version="1.0")
    old = Revision.objects.create(application=app, environment=prod, number=1, image=PINNED.format(version="1.0"),
                                  config_hash=first.config_hash, replicas=1, manifests=[], manifests_digest="d1",
                                  spec=first.snapshot["spec"], release=str(first.id))
    app.replicas = 3
    app.save()
    second = file_release(actor=developer, application=app, environment=prod, version="2.0")
    new = Revision.objects.create(application=app, environment=prod, number=2, image=PINNED.format(version="2.0"),
                                  config_hash=second.config_hash, replicas=3, manifests=[], manifests_digest="d2",
                                  spec=second.snapshot["spec"], release=str(second.id))
    Release.objects.filter(id=first.id).update(revision=old)
    Release.objects.filter(id=second.id).update(revision=new, replaced=old)
    second.refresh_from_db()
    # force the succeeded state the pipeline would have reached (no worker here)
    Release.objects.filter(id=second.id).update(state="succeeded")
    app.replicas = 9
    app.save()

    rollback = services.release_rollback(release_id=second.id, actor=developer)

    assert rollback.snapshot["restores"] == {"revision": old.id, "number": 1, "manifests_digest": "d1",
                                             "image": old.image, "config_hash": old.config_hash}
    assert rollback.spec.replicas == 1 and rollback.cost_impact["proposed"]["replicas"] == 1


def test_the_migration_gives_existing_releases_and_revisions_a_snapshot_of_todays_rows(developer, app, prod,
                                                                                       approvers):
    import importlib

    from django.apps import apps

    from deployments.models import Revision

    backfill = importlib.import_module("workflows.migrations.0010_release_snapshot_backfill").backfill
    # given a release and a revision recorded before snapshots existed, and a rollback release restoring it
    old = Revision.objects.create(application=app, environment=prod, number=1, image=PINNED.format(version="1.0"),
                                  config_hash="h", replicas=1, manifests=[], manifests_digest="d1")
    legacy = Release.objects.create(application=app, environment=prod, version="1.0", image=PINNED.format(version="1.0"),
                                    config_hash="h")
    rollback = Release.objects.create(application=app, environment=prod, version="1.0", image=old.image,
                                      config_hash="h", rollback_to=old)
    given = Approval.objects.create(release=legacy, approver=approvers[0], decision="approve", fingerprint="old")
    filed = file_release(actor=developer, application=app, environment=prod, version="2.0")
    filed_snapshot = filed.snapshot

    backfill(apps, None)

    for row in (legacy, rollback, old, filed):
        row.refresh_from_db()
    assert legacy.snapshot["captured"] == "migration"
    assert legacy.spec == filed.spec, "built from the same rows as a filing now"
    assert rollback.snapshot["restores"] == {"revision": old.id, "number": 1, "manifests_digest": "d1",
                                             "image": old.image, "config_hash": "h"}
    assert old.spec == filed_snapshot["spec"]
    assert filed.snapshot == filed_snapshot, "a release filed with a snapshot keeps it"
    given.refresh_from_db()
    assert given.voided_at is not None, "an approval of the narrower, old fingerprint no longer shows as given"


def test_a_release_filed_before_pinning_cannot_be_approved_for_its_bare_tag(api, app, prod, approvers):
    legacy = Release.objects.create(application=app, environment=prod, version="1.0", image=f"{app.image}:1.0",
                                    config_hash="h", snapshot={"spec": {}, "captured": "migration"})

    response = api.as_user(approvers[0]).post(f"/api/v1/releases/{legacy.id}/approve/")

    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "release_not_pinned" and "file it again" in response.json()["message"]
    assert not Approval.objects.exists()


def test_a_filed_snapshot_cannot_be_saved_changed(developer, app, prod):
    release = Release.objects.get(id=file_release(actor=developer, application=app, environment=prod).id)

    release.snapshot["spec"]["replicas"] = 20
    with pytest.raises(ValueError, match="frozen when it is filed"):
        release.save()

    release.refresh_from_db()
    assert release.spec.replicas == 1
    release.description = "other fields still change through the services"
    release.save()


def test_an_application_with_releases_cannot_be_renamed(api, developer, app, prod):
    """A rename would split what the snapshot deploys (old name) from what the build checks in DNS (new name)."""
    # given an application that has a release
    file_release(actor=developer, application=app, environment=prod)

    # when a developer renames it
    response = api.as_user(developer).patch(f"/api/v1/applications/{app.id}/", {"name": "renamed"}, format="json")

    # then it is refused, naming the field, and nothing changed
    assert response.status_code == 400, response.json()
    assert "cannot change once" in response.json()["extra"]["fields"]["name"][0]
    app.refresh_from_db()
    assert app.name != "renamed"
    assert api.as_user(developer).patch(f"/api/v1/applications/{app.id}/", {"description": "still editable"},
                                        format="json").status_code == 200
