"""Package uploads and releases of applications built from a base image: API validation, visibility,
approvals bound to the package (no worker)."""
import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from deployments.models import Environment, Package
from tests.deployments.factories import (
    ApplicationFactory,
    ClusterFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    base_image,
)
from tests.workflows.factories import ci_token_row
from workflows import services
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db

WAR = b"PK\x03\x04 the orders web archive"
WAR_SHA = hashlib.sha256(WAR).hexdigest()
REGISTRY = "registry.internal:5000"


@pytest.fixture(autouse=True)
def build_settings(settings, tmp_path):
    settings.SLIPWAY_REGISTRY = REGISTRY
    settings.SLIPWAY_PACKAGE_HOSTS = ["artifacts.example.com"]
    settings.SLIPWAY_PACKAGE_MAX_BYTES = 1000
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings


@pytest.fixture
def prod(db):
    return Environment.objects.create(name="prod", cluster=ClusterFactory(), required_approvals=1)


@pytest.fixture
def built_app(project):
    return ApplicationFactory(project=project, name="orders", image="", base_image=base_image("tomcat"))


@pytest.fixture
def approver(project):
    return MembershipFactory(project=project, role="approver", user=UserFactory(username="approver")).user


def upload(api, user, project="shop", content=WAR, name="orders.war"):
    return api.as_user(user).post("/api/v1/packages/", {"project": project, "file": SimpleUploadedFile(name, content)},
                                  format="multipart")


@pytest.fixture
def package(api, developer, project):
    response = upload(api, developer)
    assert response.status_code == 201, response.json()
    return Package.objects.get(id=response.json()["id"])


# -- uploads -------------------------------------------------------------------------------------------------
def test_an_upload_is_stored_with_its_size_and_sha256(api, developer, project, build_settings):
    response = upload(api, developer)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["project"], body["filename"], body["size"], body["sha256"], body["uploaded_by"]) == (
        "shop", "orders.war", len(WAR), WAR_SHA, "dev")
    stored = Package.objects.get(id=body["id"])
    assert stored.file.read() == WAR
    assert stored.file.path.startswith(str(build_settings.MEDIA_ROOT))
    assert AuditEvent.objects.filter(target_type="deployments.package", target_id=str(stored.id)).exists()


@pytest.mark.parametrize("content, name, field, reason", [
    (b"x" * 1001, "big.war", "file", "is 1001 bytes; the limit is 1000 bytes."),
    (WAR, ".profile", "file", "the name must be 1-200 letters"),
    (WAR, "my app.war", "file", "the name must be 1-200 letters"),
    (b"", "empty.war", "file", "The submitted file is empty."),
])
def test_a_bad_upload_is_a_400_naming_the_field(api, developer, project, content, name, field, reason):
    response = upload(api, developer, content=content, name=name)

    assert response.status_code == 400
    assert reason in response.json()["extra"]["fields"][field][0]
    assert not Package.objects.exists()


def test_an_upload_without_a_file_or_for_a_project_one_is_not_in_is_a_400(api, developer, project):
    ProjectFactory(slug="other")

    missing = api.as_user(developer).post("/api/v1/packages/", {"project": "shop"}, format="multipart")
    elsewhere = upload(api, developer, project="other")

    assert missing.status_code == 400 and "file" in missing.json()["extra"]["fields"]
    assert elsewhere.status_code == 400 and "project" in elsewhere.json()["extra"]["fields"]


def test_approvers_may_not_upload(api, approver):
    assert upload(api, approver).status_code == 403


def test_packages_are_visible_to_members_only(api, package, approver, outsider, finance_user):
    assert api.as_user(approver).get(f"/api/v1/packages/{package.id}/").status_code == 200
    assert api.as_user(outsider).get(f"/api/v1/packages/{package.id}/").status_code == 404
    assert api.as_user(outsider).get("/api/v1/packages/").json()["results"] == []
    assert api.as_user(finance_user).get(f"/api/v1/packages/{package.id}/").status_code == 404


# -- releases that build -------------------------------------------------------------------------------------
def file_body(app, **extra):
    return {"application": app.id, "environment": "prod", "version": "1.4.2", **extra}


def test_a_release_with_an_uploaded_package_is_filed_to_the_build_repository(api, developer, built_app, prod,
                                                                                package):
    response = api.as_user(developer).post("/api/v1/releases/", file_body(built_app, package=package.id,
                                                                          commit="abc1234"), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["image"], body["package"], body["package_sha256"], body["commit"]) == (
        f"{REGISTRY}/shop/orders", package.id, WAR_SHA, "abc1234")


def test_a_release_with_a_package_url_is_filed(api, developer, built_app, prod):
    url = "https://artifacts.example.com/orders/1.4.2/orders.war"

    response = api.as_user(developer).post("/api/v1/releases/", file_body(built_app, package_url=url,
                                                                          package_sha256=WAR_SHA), format="json")

    assert response.status_code == 201, response.json()
    assert (response.json()["package_url"], response.json()["package_sha256"]) == (url, WAR_SHA)


@pytest.mark.parametrize("extra, field, reason", [
    ({}, "package", "send exactly one of package (an uploaded package id) or package_url."),
    ({"package_url": "https://artifacts.example.com/o.war", "package": "PACKAGE"}, "package", "exactly one of"),
    ({"image": "registry.example.com/shop/orders:1"}, "image", "is built from base image tomcat; send a package"),
    ({"package_url": "https://evil.net/o.war"}, "package_url", "host evil.net is not allowed for packages"),
    ({"package_url": "ftp://artifacts.example.com/o.war"}, "package_url", "must be an http:// or https:// URL"),
    ({"package_url": "https://artifacts.example.com/o.war", "package_sha256": "ABC"}, "package_sha256",
     "This value does not match the required pattern."),
    ({"package": "PACKAGE", "package_sha256": "0" * 64}, "package_sha256", "does not match the uploaded package's"),
    ({"package": 999999}, "package", "Invalid pk"),
])
def test_a_bad_build_release_is_a_400_naming_the_field(api, developer, built_app, prod, package, extra, field,
                                                       reason):
    extra = {name: package.id if value == "PACKAGE" else value for name, value in extra.items()}

    response = api.as_user(developer).post("/api/v1/releases/", file_body(built_app, **extra), format="json")

    assert response.status_code == 400, response.json()
    assert reason in response.json()["extra"]["fields"][field][0]
    assert not built_app.releases.exists()


def test_a_package_of_another_project_cannot_be_used(api, developer, built_app, prod, project):
    other = ProjectFactory(slug="other")
    foreign = Package.objects.create(project=other, filename="x.war", file="packages/other/x", size=1,
                                      sha256="1" * 64)
    MembershipFactory(project=other, role="developer", user=developer)  # visible to the user, but not this project's

    response = api.as_user(developer).post("/api/v1/releases/", file_body(built_app, package=foreign.id),
                                           format="json")

    assert response.status_code == 400
    assert "belongs to another project" in response.json()["extra"]["fields"]["package"][0]


def test_a_prebuilt_application_takes_no_package(api, developer, project, prod, package):
    app = ApplicationFactory(project=project, name="api", image="registry.example.com/shop/api")

    response = api.as_user(developer).post("/api/v1/releases/", file_body(app, package=package.id), format="json")

    assert response.status_code == 400
    assert "runs a prebuilt image" in response.json()["extra"]["fields"]["package"][0]


def test_without_a_push_registry_a_build_release_is_refused_clearly(api, developer, built_app, prod, package,
                                                                    settings):
    settings.SLIPWAY_REGISTRY = ""

    response = api.as_user(developer).post("/api/v1/releases/", file_body(built_app, package=package.id),
                                           format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "registry_not_configured"


def test_the_ci_hook_files_a_build_release_with_a_package_url(api, built_app, prod, developer):
    ci_token_row(project=built_app.project, owner=developer, token="ci-secret")
    api.credentials(HTTP_AUTHORIZATION="Bearer ci-secret")

    response = api.post("/api/v1/hooks/ci/shop/", {
        "application": "orders", "environment": "prod", "version": "7", "commit": "deadbeef",
        "package_url": "https://artifacts.example.com/orders/7/orders.war", "package_sha256": WAR_SHA,
    }, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["commit"] == "deadbeef"


# -- approvals are bound to the package ---------------------------------------------------------------------------
def test_the_fingerprint_covers_the_package_and_the_commit(developer, built_app, prod, package):
    release = services.release_file(actor=developer, application=built_app, environment=prod, version="1",
                                     package=package)
    same = services.release_file(actor=developer, application=built_app, environment=prod, version="1",
                                 package=package)
    url = services.release_file(actor=developer, application=built_app, environment=prod, version="1",
                                package_url="https://artifacts.example.com/orders.war", package_sha256=WAR_SHA)
    other_commit = services.release_file(actor=developer, application=built_app, environment=prod, version="1",
                                         package=package, commit="abc")

    assert release.fingerprint == same.fingerprint
    assert len({release.fingerprint, url.fingerprint, other_commit.fingerprint}) == 3
    release.image_digest = "sha256:" + "a" * 64
    assert release.fingerprint == same.fingerprint, "the build's result does not change what was approved"


def test_changing_the_package_voids_earlier_approvals(api, developer, built_app, prod, package):
    # given a release with one approval of two
    prod.required_approvals = 2
    prod.save()
    approvers = [MembershipFactory(project=built_app.project, role="approver").user for _ in range(2)]
    release = services.release_file(actor=developer, application=built_app, environment=prod, version="1",
                                    package=package)
    services.approval_grant(release_id=release.id, actor=approvers[0])
    # when the developer switches to a package URL
    changed = services.release_change(release_id=release.id, actor=developer,
                                      package_url="https://artifacts.example.com/orders-2.war", package_sha256="2" * 64)
    # then the first approval no longer counts, and the release builds the URL
    assert (changed.package, changed.package_url, changed.package_sha256) == (
        None, "https://artifacts.example.com/orders-2.war", "2" * 64)
    assert changed.approvals.get().voided_at is not None
    services.approval_grant(release_id=release.id, actor=approvers[1])
    changed.refresh_from_db()
    assert changed.state == "requested"
