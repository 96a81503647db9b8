"""Image builds without a Docker daemon, like ``crane append``: base image + package + config → new image.

The base manifest (for an index: its linux/amd64 entry) and config are read
from the base's registry; its layers are mounted into the target repository
(same registry) or copied (another registry); the package and the config
files become two new reproducible layers; the new config and manifest keep the
base's media-type family and are pushed under the release's tag. The same
inputs give the same digest, so a retried build pushes the same image again.
No ORM here: the caller passes plain values, and its ``fence``, checked before
every push to the target registry (``fencing.py``).
"""
import json
import posixpath
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from paas_site.errors import PermanentError

from .fencing import Fence, unfenced
from .images import parse_image_reference
from .layers import (
    LABEL_RELEASE,
    LABEL_REVISION,
    LABEL_VERSION,
    MEDIA_TYPES,
    LayerFile,
    NewLayer,
    canonical_json,
    image_config,
    image_manifest,
    layer_bytes,
    layer_write,
    media_family,
    platform_pick,
)
from .packages import FetchedPackage
from .registry import INDEX_TYPES, RegistryClient, copy_blob, registry_access, repository_path, sha256_digest


@dataclass(frozen=True)
class BuildSpec:
    base_image: str  # the base image reference (tag or digest)
    repository: str  # where to push: registry/project/application
    tag: str  # the release's version
    app_path: str
    config_path: str
    config_files: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass
class BuiltImage:
    repository: str
    digest: str
    log: list[str]


def release_labels(*, version: str, release_id: int, commit: str = "") -> dict[str, str]:
    labels = {LABEL_VERSION: version, LABEL_RELEASE: str(release_id)}
    return {**labels, LABEL_REVISION: commit} if commit else labels


def image_build(spec: BuildSpec, package: FetchedPackage, *, fence: Fence = unfenced) -> BuiltImage:
    """Build ``spec.repository:spec.tag`` from the base image, the package and the config; its manifest digest."""
    base = parse_image_reference(spec.base_image)
    source = RegistryClient(registry_access(base.registry))
    source_repository = repository_path(base.registry, base.repository)
    manifest, media_type, base_digest = _base_manifest(source, source_repository, spec.base_image,
                                                       base.digest or base.tag or "latest")
    try:
        family = media_family(media_type)
    except ValueError as exc:
        raise PermanentError(f"base image {spec.base_image}: {exc}") from None
    base_config = _json(source.blob_get(source_repository, manifest["config"]["digest"], image=spec.base_image),
                        f"the config of base image {spec.base_image}")
    log = [f"base image {spec.base_image} ({base_digest}, {family} format, {len(manifest['layers'])} layers)"]

    target_ref = parse_image_reference(spec.repository)
    target = source if target_ref.registry == base.registry else RegistryClient(registry_access(target_ref.registry))
    repository, image = target_ref.repository, f"{spec.repository}:{spec.tag}"
    moves: dict[str, int] = {}
    for descriptor in manifest["layers"]:
        fence(f"push base layer {descriptor['digest']} to {spec.repository}")
        how = copy_blob(source, source_repository, target, repository, descriptor["digest"], image=image)
        moves[how] = moves.get(how, 0) + 1
    log.append("base layers: " + ", ".join(f"{count} {how}" for how, count in sorted(moves.items())))

    new_layers = []
    package_path = posixpath.join(spec.app_path, package.name)
    with tempfile.TemporaryFile() as blob:
        layer = layer_write([LayerFile(package_path, package.file, size=package.size)], blob)
        blob_ensure(target, repository, layer.digest, blob, image=image, fence=fence)
    new_layers.append(NewLayer(layer, f"slipway: package {package.name} (sha256 {package.sha256}) at {package_path}"))
    log.append(f"package layer {layer.digest}: {package_path} ({package.size} bytes)")
    if spec.config_files:
        layer, data = layer_bytes(
            LayerFile(posixpath.join(spec.config_path, name), content.encode())
            for name, content in spec.config_files.items()
        )
        blob_ensure(target, repository, layer.digest, data, image=image, fence=fence)
        names = ", ".join(sorted(spec.config_files))
        new_layers.append(NewLayer(layer, f"slipway: config files {names} at {spec.config_path}"))
        log.append(f"config layer {layer.digest}: {names} at {spec.config_path}")

    config = canonical_json(image_config(base_config, layers=new_layers, env=dict(spec.env),
                                         labels=dict(spec.labels)))
    blob_ensure(target, repository, sha256_digest(config), config, image=image, fence=fence)
    new_manifest = image_manifest(
        family=family, config=config, base_layers=manifest["layers"], layers=[new.layer for new in new_layers],
        annotations={"org.opencontainers.image.base.name": spec.base_image,
                     "org.opencontainers.image.base.digest": base_digest},
    )
    fence(f"push {image}")
    digest = target.manifest_put(repository, spec.tag, canonical_json(new_manifest), MEDIA_TYPES[family]["manifest"],
                                 image=image)
    log.append(f"pushed {image} as {digest}")
    return BuiltImage(repository=spec.repository, digest=digest, log=log)


def blob_ensure(client: RegistryClient, repository: str, digest: str, data: bytes | IO[bytes], *, image: str,
                fence: Fence = unfenced) -> None:
    """Upload a blob unless the repository has it already (pushes are digest-addressed: idempotent)."""
    if not client.blob_exists(repository, digest, image=image):
        fence(f"push blob {digest} to {repository}")
        if hasattr(data, "seek"):
            data.seek(0)
        client.blob_upload(repository, digest, data, image=image)


def _base_manifest(client: RegistryClient, repository: str, image: str, reference: str) -> tuple[dict, str, str]:
    """The base's image manifest, its media type and digest; an index is resolved to its linux/amd64 entry."""
    fetched = client.manifest_get(repository, reference, image=image)
    document = _json(fetched.body, f"the manifest of base image {image}")
    media_type = document.get("mediaType") or fetched.media_type
    if media_type in INDEX_TYPES:
        try:
            descriptor = platform_pick(document)
        except ValueError as exc:
            raise PermanentError(f"base image {image}: {exc}") from None
        fetched = client.manifest_get(repository, descriptor["digest"], image=image)
        document = _json(fetched.body, f"the linux/amd64 manifest of base image {image}")
        media_type = document.get("mediaType") or fetched.media_type
    if not isinstance(document.get("config"), dict) or not isinstance(document.get("layers"), list):
        raise PermanentError(f"base image {image}: its manifest has no config or layers")
    return document, media_type, fetched.digest


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise PermanentError(f"{what} is not a JSON object")
    return document
