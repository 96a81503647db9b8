"""Small but real base images for the middleware catalog, made locally and pushed to a registry.

Each has one reproducible layer (a marker file naming the middleware, and its
app and config directories) and a config with Env, Cmd, ExposedPorts and
WorkingDir, so builds can layer packages onto it; nothing in it runs (the
sandbox cluster runs nothing). One of them (nginx) is pushed as an index with
linux/amd64 and linux/arm64 images, as multi-platform bases are.
"""
from dataclasses import dataclass

from .builds import blob_ensure
from .layers import (
    EPOCH,
    MEDIA_TYPES,
    OCI,
    LayerDirectory,
    LayerFile,
    canonical_json,
    image_index,
    image_manifest,
    layer_bytes,
)
from .registry import RegistryClient, sha256_digest

MULTI_PLATFORM = {"nginx"}
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MARKER = "/etc/slipway/base-image"


@dataclass(frozen=True)
class BaseImageSpec:
    name: str
    app_path: str
    config_path: str
    port: int


def base_image_push(client: RegistryClient, repository: str, tag: str, spec: BaseImageSpec) -> str:
    """Push the base image as ``repository:tag`` (an index for multi-platform ones); its digest."""
    image = f"{client.host}/{repository}:{tag}"
    architectures = ["amd64", "arm64"] if spec.name in MULTI_PLATFORM else ["amd64"]
    manifest_type = MEDIA_TYPES[OCI]["manifest"]
    platforms = []
    for architecture in architectures:
        body = _platform_manifest(client, repository, spec, architecture, image=image)
        if len(architectures) == 1:
            return client.manifest_put(repository, tag, body, manifest_type, image=image)
        client.manifest_put(repository, sha256_digest(body), body, manifest_type, image=image)
        platforms.append((body, "linux", architecture))
    index = image_index(platforms)
    return client.manifest_put(repository, tag, canonical_json(index), index["mediaType"], image=image)


def _platform_manifest(client: RegistryClient, repository: str, spec: BaseImageSpec, architecture: str, *,
                       image: str) -> bytes:
    layer, data = layer_bytes([
        LayerDirectory(spec.app_path),
        LayerDirectory(spec.config_path),
        LayerFile(MARKER, f"{spec.name} linux/{architecture}\n".encode()),
    ])
    blob_ensure(client, repository, layer.digest, data, image=image)
    config = canonical_json({
        "architecture": architecture,
        "os": "linux",
        "created": EPOCH,
        "config": {
            "Env": [PATH, f"SLIPWAY_BASE_IMAGE={spec.name}"],
            "Cmd": ["/bin/sh", "-c", f"exec {spec.name}"],
            "ExposedPorts": {f"{spec.port}/tcp": {}},
            "WorkingDir": spec.app_path,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created": EPOCH, "created_by": f"slipway base_images_seed: {spec.name} marker"}],
    })
    blob_ensure(client, repository, sha256_digest(config), config, image=image)
    return canonical_json(image_manifest(family=OCI, config=config, layers=[layer]))
