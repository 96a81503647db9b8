"""Images come only from allow-listed registries (SLIPWAY_REGISTRIES, plus the build registry): a 400 at filing."""
import pytest

from deployments.models import Application, Environment
from tests.deployments.factories import ApplicationFactory, ClusterFactory
from tests.workflows.factories import PINNED
from workflows.models import Release

pytestmark = pytest.mark.django_db
DIGEST = "@sha256:" + "c" * 64


@pytest.fixture
def dev(db):
    return Environment.objects.create(name="dev", cluster=ClusterFactory(), required_approvals=0)


@pytest.fixture
def app(project):
    return ApplicationFactory(project=project, name="api", image="registry.example.com/shop/api")


@pytest.fixture
def registries(settings):
    settings.SLIPWAY_REGISTRY = "build.example.com"
    settings.SLIPWAY_REGISTRIES = ["registry.example.com", "*.mirror.example.com", "docker.io"]
    return settings


def file(api, developer, app, image):
    return api.as_user(developer).post("/api/v1/releases/", {
        "application": app.id, "environment": "dev", "version": "1.0", "image": image}, format="json")


@pytest.mark.parametrize("image", [
    "evil.example.net/shop/api:1.0", "169.254.169.254/latest:1", "10.0.0.7:5000/shop/api:1", "localhost:5000/x:1",
    "127.0.0.1:5000/shop/api:1.0", "registry.example.com:5001/shop/api:1.0", "mirror.example.com/x:1",
    "registry.example.com.evil.net/shop/api:1",
])
def test_an_image_on_another_registry_is_a_400_naming_the_field_and_the_allowed(api, developer, app, dev,
                                                                               registries, image):
    response = file(api, developer, app, image + DIGEST)

    assert response.status_code == 400, response.json()
    reason = response.json()["extra"]["fields"]["image"][0]
    assert "is not allowed (allowed registries: build.example.com, registry.example.com, *.mirror.example.com, " \
           "docker.io)" in reason
    assert not Release.objects.exists()


@pytest.mark.parametrize("image", [
    PINNED.format(version="1.0"), "build.example.com/shop/api:1.0", "eu.mirror.example.com/shop/api:1",
    "nginx:1.27", "docker.io/library/nginx:1.27", "index.docker.io/library/nginx:1.27",
])
def test_an_image_on_an_allowed_registry_is_filed(api, developer, app, dev, registries, image):
    response = file(api, developer, app, image if "@" in image else image + DIGEST)

    assert response.status_code == 201, response.json()


def test_docker_hub_is_not_allowed_unless_listed(api, developer, app, dev, registries):
    registries.SLIPWAY_REGISTRIES = ["registry.example.com"]

    response = file(api, developer, app, "nginx:1.27" + DIGEST)

    assert response.status_code == 400
    assert "registry docker.io is not allowed" in response.json()["message"]


def test_an_application_on_another_registry_is_a_400_naming_the_field(api, developer, registries):
    response = api.as_user(developer).post("/api/v1/applications/", {
        "project": "shop", "name": "web", "image": "169.254.169.254/shop/web", "port": 8080,
        "cpu_request": "250m", "cpu_limit": "1", "memory_request": "256Mi", "memory_limit": "512Mi",
    }, format="json")

    assert response.status_code == 400, response.json()
    assert "registry 169.254.169.254 is not allowed" in response.json()["extra"]["fields"]["image"][0]
    assert not Application.objects.filter(name="web").exists()


def test_a_smoke_check_url_on_a_literal_inward_address_is_a_400(api, developer, settings):
    settings.SLIPWAY_OUTBOUND_ALLOW = []
    response = api.as_user(developer).post("/api/v1/applications/", {
        "project": "shop", "name": "web", "image": "registry.example.com/shop/web", "port": 8080,
        "cpu_request": "250m", "cpu_limit": "1", "memory_request": "256Mi", "memory_limit": "512Mi",
        "smoke_check_url": "http://169.254.169.254/latest/meta-data",
    }, format="json")

    assert response.status_code == 400, response.json()
    assert "refused by the outbound policy" in response.json()["extra"]["fields"]["smoke_check_url"][0]
