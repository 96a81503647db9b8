"""Image builds against a real ``docker-registry``: what is pushed is read back and its digests checked."""
import gzip
import hashlib
import io
import json
import tarfile
import uuid

import pytest

from deployments.base_images import BaseImageSpec, base_image_push
from deployments.builds import BuildSpec, image_build, release_labels
from deployments.layers import DOCKER, MEDIA_TYPES, LayerFile, canonical_json, image_manifest, layer_bytes
from deployments.packages import FetchedPackage
from deployments.registry import RegistryClient, registry_access, resolve_digest
from paas_site.errors import PermanentError
from tests.registry_fixture import RegistryServer

pytestmark = pytest.mark.integration

WAR = b"PK\x03\x04 pretend this is a web archive"
TOMCAT = BaseImageSpec(name="tomcat", app_path="/usr/local/tomcat/webapps", config_path="/usr/local/tomcat/conf/app",
                       port=8080)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def client(server) -> RegistryClient:
    return RegistryClient(registry_access(server.host))


def push_base(server, spec: BaseImageSpec = TOMCAT, *, repository: str = "") -> str:
    """Push a seed base image into ``server``; its reference."""
    repository = repository or f"base/{spec.name}-{uuid.uuid4().hex[:8]}"
    base_image_push(client(server), repository, "1", spec)
    return f"{server.host}/{repository}:1"


def package(content: bytes = WAR, name: str = "ROOT.war") -> FetchedPackage:
    return FetchedPackage(file=io.BytesIO(content), name=name, size=len(content),
                          sha256=hashlib.sha256(content).hexdigest())


def spec(base: str, repository: str, **fields) -> BuildSpec:
    values = {
        "base_image": base, "repository": repository, "tag": "1.4.2", "app_path": TOMCAT.app_path,
        "config_path": TOMCAT.config_path, "config_files": {"app.properties": "mode=prod\n"},
        "env": {"MODE": "prod"}, "labels": release_labels(version="1.4.2", release_id=7, commit="abc1234"),
    }
    return BuildSpec(**{**values, **fields})


def read_image(server, repository: str, reference: str) -> tuple[dict, dict, list[bytes]]:
    """The manifest, config and layer blobs as the registry serves them, each checked against its digest."""
    registry = client(server)
    manifest = registry.manifest_get(repository, reference, image=reference)
    assert manifest.digest == sha256(manifest.body)
    document = json.loads(manifest.body)
    config = registry.blob_get(repository, document["config"]["digest"], image=reference)
    layers = []
    for descriptor in document["layers"]:
        with registry.blob_download(repository, descriptor["digest"], image=reference) as blob:
            data = blob.read()
        assert (sha256(data), len(data)) == (descriptor["digest"], descriptor["size"])
        layers.append(data)
    return document, json.loads(config), layers


def tar_files(blob: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_a_build_appends_the_package_and_config_layers_to_the_base(registry):
    # given a base image in the registry
    base = push_base(registry)
    target = f"{registry.host}/shop/orders"
    # when a package is built onto it
    built = image_build(spec(base, target), package())
    # then the registry serves the pushed manifest under the tag and the digest
    assert resolve_digest(f"{target}:1.4.2") == built.digest
    manifest, config, layers = read_image(registry, "shop/orders", built.digest)
    _, base_config, base_layers = read_image(registry, base.split("/", 1)[1].split(":")[0], "1")
    assert manifest["mediaType"] == MEDIA_TYPES["oci"]["manifest"]
    assert layers[:1] == base_layers
    # the package sits at the base's app path, the config files at its config path
    assert tar_files(layers[1]) == {"usr/local/tomcat/webapps/ROOT.war": WAR}
    assert tar_files(layers[2]) == {"usr/local/tomcat/conf/app/app.properties": b"mode=prod\n"}
    # the config names the uncompressed layers, and keeps the base's settings
    assert config["rootfs"]["diff_ids"] == [sha256(gzip.decompress(layer)) for layer in layers]
    assert len(config["history"]) == len(layers)
    assert config["config"]["Env"] == [*base_config["config"]["Env"], "MODE=prod"]
    assert config["config"]["Cmd"] == base_config["config"]["Cmd"]
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert config["config"]["Labels"] == {
        "org.opencontainers.image.version": "1.4.2", "org.opencontainers.image.revision": "abc1234",
        "io.slipway.release": "7",
    }
    assert manifest["annotations"]["org.opencontainers.image.base.name"] == base
    assert built.repository == target and f"pushed {target}:1.4.2 as {built.digest}" in built.log


def test_the_same_inputs_give_the_same_digest_and_other_inputs_another(registry):
    base = push_base(registry)
    target = f"{registry.host}/shop/same"

    first = image_build(spec(base, target), package())
    again = image_build(spec(base, target), package())
    other_commit = image_build(spec(base, target, labels=release_labels(version="1.4.2", release_id=7, commit="f00")),
                               package())
    other_package = image_build(spec(base, target), package(WAR + b"!"))

    assert again.digest == first.digest
    assert "base layers: 1 present" in again.log
    assert len({first.digest, other_commit.digest, other_package.digest}) == 3


def test_an_index_base_is_built_from_its_linux_amd64_image(registry):
    # given a base pushed as an index of linux/amd64 and linux/arm64 images
    nginx = BaseImageSpec(name="nginx", app_path="/usr/share/nginx/html", config_path="/etc/nginx/conf.d", port=8080)
    base = push_base(registry, nginx)
    repository = base.split("/", 1)[1].split(":")[0]
    index = json.loads(client(registry).manifest_get(repository, "1", image=base).body)
    assert index["mediaType"] == MEDIA_TYPES["oci"]["index"]
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    # when a package is built onto it
    built = image_build(spec(base, f"{registry.host}/shop/site", app_path=nginx.app_path, config_files={}),
                        package(b"<h1>hi</h1>", "index.html"))
    # then the image is the amd64 one plus the package
    manifest, config, layers = read_image(registry, "shop/site", built.digest)
    assert config["architecture"] == "amd64"
    assert tar_files(layers[0]) == {"etc/slipway/base-image": b"nginx linux/amd64\n"}
    assert tar_files(layers[1]) == {"usr/share/nginx/html/index.html": b"<h1>hi</h1>"}
    assert len(layers) == 2, "no config files, no config layer"


def test_a_docker_format_base_gives_a_docker_format_image(registry):
    # given a base in Docker's v2 schema 2 format
    layer, blob = layer_bytes([LayerFile("/etc/os-release", b"ID=tiny\n")])
    config = canonical_json({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]},
                             "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}})
    registry.push_blob("base/docker-format", blob)
    registry.push_blob("base/docker-format", config)
    manifest = image_manifest(family=DOCKER, config=config, layers=[layer])
    client(registry).manifest_put("base/docker-format", "1", canonical_json(manifest), manifest["mediaType"],
                                  image="base")
    # when a package is built onto it
    built = image_build(spec(f"{registry.host}/base/docker-format:1", f"{registry.host}/shop/legacy"), package())
    # then the new image is in the Docker format too
    manifest, config, layers = read_image(registry, "shop/legacy", built.digest)
    assert manifest["mediaType"] == MEDIA_TYPES[DOCKER]["manifest"]
    assert manifest["config"]["mediaType"] == MEDIA_TYPES[DOCKER]["config"]
    assert {entry["mediaType"] for entry in manifest["layers"][1:]} == {MEDIA_TYPES[DOCKER]["layer"]}
    assert "annotations" not in manifest
    assert config["rootfs"]["diff_ids"] == [sha256(gzip.decompress(layer)) for layer in layers]


def test_base_layers_are_mounted_within_a_registry(registry):
    base = push_base(registry)

    built = image_build(spec(base, f"{registry.host}/shop/mounted"), package())

    assert "base layers: 1 mounted" in built.log
    read_image(registry, "shop/mounted", built.digest)  # every blob is served from the target repository


def test_base_layers_are_copied_from_another_registry(registry, tmp_path):
    # given a base image in a second registry
    other = RegistryServer(tmp_path)
    other.start()
    try:
        base = push_base(other)
        # when an image is built from it into the first registry
        built = image_build(spec(base, f"{registry.host}/shop/copied"), package())
    finally:
        other.stop()
    # then the base layer was copied, and the image is whole without the other registry
    assert "base layers: 1 copied" in built.log
    manifest, _, layers = read_image(registry, "shop/copied", built.digest)
    assert len(layers) == 3


def test_a_missing_base_image_is_a_permanent_error_naming_it(registry):
    with pytest.raises(PermanentError, match=rf"image {registry.host}/base/nothing:1 not found"):
        image_build(spec(f"{registry.host}/base/nothing:1", f"{registry.host}/shop/x"), package())


def test_an_index_without_linux_amd64_is_a_permanent_error(registry):
    # given an index that lists only an arm64 image
    layer, blob = layer_bytes([LayerFile("/marker", b"arm\n")])
    config = canonical_json({"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers",
                                                                                "diff_ids": [layer.diff_id]}})
    registry.push_blob("base/arm-only", blob)
    registry.push_blob("base/arm-only", config)
    body = canonical_json(image_manifest(family="oci", config=config, layers=[layer]))
    registry_client = client(registry)
    registry_client.manifest_put("base/arm-only", sha256(body), body, MEDIA_TYPES["oci"]["manifest"], image="base")
    index = {"schemaVersion": 2, "mediaType": MEDIA_TYPES["oci"]["index"], "manifests": [
        {"mediaType": MEDIA_TYPES["oci"]["manifest"], "digest": sha256(body), "size": len(body),
         "platform": {"os": "linux", "architecture": "arm64"}}]}
    registry_client.manifest_put("base/arm-only", "1", canonical_json(index), index["mediaType"], image="base")
    # then
    with pytest.raises(PermanentError, match="has no linux/amd64 manifest \\(it has: linux/arm64\\)"):
        image_build(spec(f"{registry.host}/base/arm-only:1", f"{registry.host}/shop/x"), package())
