"""``manage.py base_images_seed`` against a real ``docker-registry``."""
import io
import json
import socket

import pytest
from django.core.management import CommandError, call_command

from deployments.models import BaseImage
from deployments.registry import RegistryClient, registry_access, resolve_digest
from workflows.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def seed(registry) -> str:
    out = io.StringIO()
    call_command("base_images_seed", registry=registry.host, stdout=out)
    return out.getvalue()


def test_the_catalog_is_pushed_and_pointed_at_the_registry_once(registry):
    # given the catalog as migrated (public references)
    assert BaseImage.objects.count() == 5
    # when seeded twice
    first = seed(registry)
    second = seed(registry)
    # then every entry points at an image in the registry, and the second run changed nothing
    for base in BaseImage.objects.all():
        assert base.image.startswith(f"{registry.host}/slipway/base/{base.name}:"), base.image
        digest = resolve_digest(base.image)
        assert f"{base.name}: {base.image} {digest} (catalog updated)" in first
        assert f"{base.name}: {base.image} {digest} (catalog unchanged)" in second
    changes = AuditEvent.objects.filter(action="object.changed", target_type="deployments.baseimage")
    assert changes.count() == 5
    assert {event.actor for event in changes} == {"system:base_images_seed"}


def test_the_images_carry_the_catalog_settings_and_nginx_is_multi_platform(registry):
    seed(registry)
    client = RegistryClient(registry_access(registry.host))

    tomcat = BaseImage.objects.get(name="tomcat")
    repository, tag = tomcat.image.split("/", 1)[1].rsplit(":", 1)
    manifest = json.loads(client.manifest_get(repository, tag, image=tomcat.image).body)
    config = json.loads(client.blob_get(repository, manifest["config"]["digest"], image=tomcat.image))
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert config["config"]["WorkingDir"] == tomcat.app_path
    assert "SLIPWAY_BASE_IMAGE=tomcat" in config["config"]["Env"] and config["config"]["Cmd"]

    nginx = BaseImage.objects.get(name="nginx")
    repository, tag = nginx.image.split("/", 1)[1].rsplit(":", 1)
    index = json.loads(client.manifest_get(repository, tag, image=nginx.image).body)
    assert {(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]} == {
        ("linux", "amd64"), ("linux", "arm64")}
    for entry in index["manifests"]:  # each platform's manifest is in the registry under its digest
        assert client.manifest_get(repository, entry["digest"], image=nginx.image).digest == entry["digest"]


def test_without_a_registry_the_command_says_what_to_set(settings):
    settings.SLIPWAY_REGISTRY = ""

    with pytest.raises(CommandError, match="set SLIPWAY_REGISTRY or pass --registry"):
        call_command("base_images_seed")


def test_an_unreachable_registry_is_a_clear_command_error(closed_port):
    with pytest.raises(CommandError, match=f"registry 127.0.0.1:{closed_port} unreachable"):
        call_command("base_images_seed", registry=f"127.0.0.1:{closed_port}")


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
