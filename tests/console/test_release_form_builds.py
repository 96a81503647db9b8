"""The release form for applications built from a base image: package upload or URL + sha256, commit, hints,
errors next to the fields, and no package left behind when the release is refused."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from deployments import services as deployments
from deployments.models import Package
from tests.console.test_views import field_group, form_data
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, base_image
from tests.workflows.test_build_releases import REGISTRY, WAR, WAR_SHA, build_settings  # noqa: F401 (autouse fixture)
from workflows.models import AuditEvent, Release

pytestmark = pytest.mark.django_db
URL = "https://artifacts.example.com/orders/1.4.2/orders.war"


@pytest.fixture
def media(settings):
    return settings.MEDIA_ROOT  # a temporary folder: build_settings (autouse) set it


@pytest.fixture
def prod():
    return EnvironmentFactory(name="prod", required_approvals=1, rank=2)


@pytest.fixture
def built_app(project):
    return ApplicationFactory(project=project, name="orders", image="", base_image=base_image("tomcat"))


@pytest.fixture
def prebuilt_app(project):
    return ApplicationFactory(project=project, name="api", image="registry.example.com/shop/api")


def war(content=WAR, name="orders.war"):
    return SimpleUploadedFile(name, content, content_type="application/java-archive")


def stored_files(media) -> list[str]:
    return sorted(str(path.relative_to(media)) for path in media.rglob("*") if path.is_file())


def post(client, app, env, **fields):
    # the test client sends multipart whenever the data holds a file, as a browser does with this form's enctype
    return client.post(reverse("console:release-new"), form_data(app, env, **fields))


def test_the_form_offers_a_package_and_says_what_applies_to_the_chosen_application(client, developer, built_app,
                                                                                    prebuilt_app, prod):
    client.force_login(developer)

    blank = client.get(reverse("console:release-new")).content.decode()
    built = client.get(reverse("console:release-new"), {"application": built_app.id}).content.decode()
    prebuilt = client.get(reverse("console:release-new"), {"application": prebuilt_app.id}).content.decode()

    assert 'enctype="multipart/form-data"' in blank
    for field in ("package_file", "package_url", "package_sha256", "commit"):
        assert f'name="{field}"' in blank
    assert 'type="file"' in field_group(blank, "package_file")
    assert "allowed host (artifacts.example.com)" in field_group(blank, "package_url")
    base = built_app.base_image.display_name  # "Apache Tomcat 10.1" as seeded
    assert f">shop/orders (built from {base})</option>" in blank and ">shop/api (prebuilt image)</option>" in blank
    assert "takes a package (upload it, or give its URL)" in blank
    assert f"shop/orders is built from base image {base}: upload its package or give the package URL" in built
    assert "shop/api runs a prebuilt image: give the image (empty for registry.example.com/shop/api:&lt;version&gt;)" \
        in prebuilt


def test_filing_a_build_release_with_an_uploaded_package(client, developer, built_app, prod, media):
    client.force_login(developer)

    response = post(client, built_app, prod, package_file=war(), commit="abc1234")

    release = Release.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("console:release-detail", args=[release.id])
    package = release.package
    assert (package.project, package.filename, package.size, package.sha256, package.uploaded_by) == (
        built_app.project, "orders.war", len(WAR), WAR_SHA, developer)
    assert package.file.read() == WAR and stored_files(media) == [f"packages/shop/{WAR_SHA}"]
    assert (release.image, release.package_sha256, release.package_url, release.commit) == (
        f"{REGISTRY}/shop/orders", WAR_SHA, "", "abc1234")
    assert (release.requested_via, release.state) == ("console", "requested")
    assert AuditEvent.objects.filter(target_type="deployments.package", target_id=str(package.id)).exists()
    page = client.get(response["Location"]).content.decode()
    assert f"orders.war (uploaded, {len(WAR)}\xa0bytes), sha256 <code>{WAR_SHA}</code>" in page
    assert "<dt>Commit</dt><dd><code>abc1234</code></dd>" in page


def test_filing_a_build_release_with_a_package_url(client, developer, built_app, prod, media):
    client.force_login(developer)

    response = post(client, built_app, prod, package_url=URL, package_sha256=WAR_SHA, commit="v1.4.2")

    assert response.status_code == 302
    release = Release.objects.get()
    assert (release.package, release.package_url, release.package_sha256, release.commit) == (
        None, URL, WAR_SHA, "v1.4.2")
    assert not Package.objects.exists() and stored_files(media) == []


UPLOAD = "UPLOAD"


@pytest.mark.parametrize("app_name, fields, field, reason", [
    ("built", {}, "package_file", "shop/orders is built from base image {base}: upload its package or give its URL."),
    ("built", {"package_file": UPLOAD, "package_url": URL}, "package_url", "Upload a package or give its URL, not both."),
    ("built", {"package_url": "https://evil.example.net/o.war"}, "package_url",
     "host evil.example.net is not allowed for packages (allowed: artifacts.example.com)."),
    ("built", {"package_url": "ftp://artifacts.example.com/o.war"}, "package_url", "must be an http:// or https:// URL."),
    ("built", {"package_url": URL, "package_sha256": WAR_SHA.upper()}, "package_sha256",
     "Use 64 lowercase hexadecimal digits"),
    ("built", {"package_file": UPLOAD, "package_sha256": "0" * 64}, "package_sha256",
     f"does not match the uploaded package&#x27;s sha256 ({WAR_SHA})."),
    ("built", {"package_file": war(name="my app.war")}, "package_file", "the name must be 1-200 letters"),
    ("built", {"package_file": war(content=b"x" * 1001)}, "package_file", "is 1001 bytes; the limit is 1000 bytes."),
    ("built", {"package_file": war(content=b"")}, "package_file", "The submitted file is empty."),
    ("built", {"package_file": UPLOAD, "image": "registry.example.com/shop/orders:1"}, "image",
     "is built from base image tomcat; send a package"),
    ("built", {"package_file": UPLOAD, "commit": "not a commit!"}, "commit",
     "Use up to 64 letters, digits, &#x27;_&#x27;, &#x27;.&#x27; or &#x27;-&#x27;."),
    ("prebuilt", {"package_file": UPLOAD}, "package_file", "api runs a prebuilt image"),
    ("prebuilt", {"package_url": URL}, "package_url", "api runs a prebuilt image"),
])
def test_bad_package_input_is_shown_next_to_its_field_and_nothing_is_stored(
        client, developer, built_app, prebuilt_app, prod, media, app_name, fields, field, reason):
    client.force_login(developer)
    app = built_app if app_name == "built" else prebuilt_app
    fields = {name: war() if value == UPLOAD else value for name, value in fields.items()}

    response = post(client, app, prod, **fields)

    assert response.status_code == 400
    html = response.content.decode()
    assert reason.format(base=built_app.base_image.display_name) in field_group(html, field)
    assert "The release was not filed" in html
    assert not Release.objects.exists() and not Package.objects.exists()
    assert stored_files(media) == []  # an upload stored before the release was refused went with it
    assert not AuditEvent.objects.filter(target_type="deployments.package").exists()
    if "package_file" in fields:
        assert "The file you chose was not kept: choose it again." in html


def test_a_refused_release_keeps_an_earlier_upload_of_the_same_content(client, developer, built_app, prod, media):
    earlier = deployments.package_upload(project=built_app.project, file=war(), actor=developer)
    client.force_login(developer)

    response = post(client, built_app, prod, package_file=war(), package_sha256="0" * 64)

    assert response.status_code == 400
    assert list(Package.objects.all()) == [earlier] and stored_files(media) == [earlier.file.name]
    assert Package.objects.get().file.read() == WAR


def test_without_a_push_registry_the_form_says_so_and_stores_nothing(client, developer, built_app, prod, media,
                                                                     settings):
    settings.SLIPWAY_REGISTRY = ""
    client.force_login(developer)

    response = post(client, built_app, prod, package_file=war())

    assert response.status_code == 400
    assert "No registry to push built images to is configured" in response.content.decode()
    assert not Package.objects.exists() and stored_files(media) == []
