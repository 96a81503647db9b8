"""Reproducible layers and image documents, without a registry."""
import gzip
import hashlib
import io
import json
import tarfile

import pytest

from deployments.layers import (
    DOCKER,
    EPOCH,
    OCI,
    LayerDirectory,
    LayerFile,
    NewLayer,
    env_merge,
    image_config,
    image_manifest,
    layer_bytes,
    media_family,
    platform_pick,
)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


WAR = b"PK\x03\x04 a war"


def entries():
    return [
        LayerFile("/srv/app/b.txt", b"second"),
        LayerFile("/srv/app/a.war", io.BytesIO(WAR), size=len(WAR)),
        LayerDirectory("/srv/conf"),
    ]


def test_the_same_entries_in_any_order_give_the_same_bytes():
    first, first_bytes = layer_bytes(entries())
    second, second_bytes = layer_bytes(list(reversed(entries())))

    assert first_bytes == second_bytes
    assert first == second


def test_digests_name_the_compressed_blob_and_the_uncompressed_tar():
    layer, blob = layer_bytes(entries())

    assert layer.digest == sha256(blob) and layer.size == len(blob)
    assert layer.diff_id == sha256(gzip.decompress(blob))


def test_entries_carry_fixed_times_owners_and_modes_in_path_order():
    _, blob = layer_bytes(entries())

    assert blob[4:8] == b"\0\0\0\0"  # the gzip header's mtime
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["srv/app/a.war", "srv/app/b.txt", "srv/conf"]
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
        assert [oct(m.mode) for m in members] == ["0o644", "0o644", "0o755"]
        assert tar.extractfile("srv/app/a.war").read() == WAR


def test_a_path_that_names_no_file_is_refused():
    with pytest.raises(ValueError, match="names no file"):
        layer_bytes([LayerFile("/", b"x")])


def test_new_env_overrides_the_base_in_place_and_appends_new_names_sorted():
    merged = env_merge(["PATH=/bin", "LANG=C", "JAVA_OPTS=-Xmx1g"], {"LANG": "C.UTF-8", "ZED": "1", "APP": "x"})

    assert merged == ["PATH=/bin", "LANG=C.UTF-8", "JAVA_OPTS=-Xmx1g", "APP=x", "ZED=1"]


def test_the_config_adds_diff_ids_history_env_and_labels_to_the_base():
    base = {
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["catalina.sh", "run"], "Labels": {"vendor": "base"}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
        "history": [{"created_by": "base"}],
    }
    layer, _ = layer_bytes(entries())

    config = image_config(base, layers=[NewLayer(layer, "package")], env={"MODE": "prod"}, labels={"v": "1.0"})

    assert config["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64, layer.diff_id]
    assert config["history"] == [{"created_by": "base"}, {"created": EPOCH, "created_by": "package"}]
    assert config["config"]["Env"] == ["PATH=/bin", "MODE=prod"]
    assert config["config"]["Labels"] == {"vendor": "base", "v": "1.0"}
    assert config["config"]["Cmd"] == ["catalina.sh", "run"]
    assert config["created"] == EPOCH
    assert base["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64], "the base document is left as it was"


def test_a_base_without_history_gets_one_entry_per_layer():
    base = {"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]}}
    layer, _ = layer_bytes(entries())

    config = image_config(base, layers=[NewLayer(layer, "package")], env={}, labels={})

    assert len(config["history"]) == 3


@pytest.mark.parametrize("family, manifest_type, layer_type", [
    (OCI, "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.layer.v1.tar+gzip"),
    (DOCKER, "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.image.rootfs.diff.tar.gzip"),
])
def test_the_manifest_keeps_the_media_type_family(family, manifest_type, layer_type):
    layer, _ = layer_bytes(entries())
    config = json.dumps({"os": "linux"}).encode()
    base_layer = {"mediaType": "from-the-base", "digest": "sha256:" + "1" * 64, "size": 3}

    manifest = image_manifest(family=family, config=config, base_layers=[base_layer], layers=[layer])

    assert manifest["mediaType"] == manifest_type and media_family(manifest_type) == family
    assert manifest["config"]["digest"] == sha256(config)
    assert manifest["layers"] == [base_layer, {"mediaType": layer_type, "digest": layer.digest, "size": layer.size}]


def test_an_unknown_manifest_type_is_refused():
    with pytest.raises(ValueError, match="application/vnd.docker.distribution.manifest.v1\\+json is not an image"):
        media_family("application/vnd.docker.distribution.manifest.v1+json")


def test_the_platform_pick_takes_linux_amd64_and_names_what_an_index_has():
    index = {"manifests": [
        {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
    ]}

    assert platform_pick(index)["digest"] == "sha256:amd"
    with pytest.raises(ValueError, match="no linux/amd64 manifest \\(it has: linux/arm64\\)"):
        platform_pick({"manifests": index["manifests"][:1]})
