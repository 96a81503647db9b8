"""Image layers and documents, reproducibly: the same inputs always give the same bytes and digests. Pure.

A layer is a gzip-compressed tar whose entries are sorted by path and carry a
fixed time (the epoch), owner (0:0, no names) and mode, compressed with a
fixed gzip header (no name, mtime 0). The image config's ``rootfs.diff_ids``
name the *uncompressed* tar; the manifest's layer descriptors the compressed
blob. Documents are serialized as compact JSON with sorted keys.
"""
import gzip
import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

EPOCH = "1970-01-01T00:00:00Z"  # the build time written into configs: fixed, so rebuilds give the same digest
OCI = "oci"
DOCKER = "docker"
MEDIA_TYPES = {
    OCI: {
        "manifest": "application/vnd.oci.image.manifest.v1+json",
        "config": "application/vnd.oci.image.config.v1+json",
        "layer": "application/vnd.oci.image.layer.v1.tar+gzip",
        "index": "application/vnd.oci.image.index.v1+json",
    },
    DOCKER: {
        "manifest": "application/vnd.docker.distribution.manifest.v2+json",
        "config": "application/vnd.docker.container.image.v1+json",
        "layer": "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "index": "application/vnd.docker.distribution.manifest.list.v2+json",
    },
}
LABEL_VERSION = "org.opencontainers.image.version"
LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_RELEASE = "io.slipway.release"


@dataclass(frozen=True)
class LayerFile:
    """One file of a layer: its absolute path in the image and its content (bytes, or a readable file and size)."""

    path: str
    content: bytes | IO[bytes]
    size: int | None = None
    mode: int = 0o644


@dataclass(frozen=True)
class LayerDirectory:
    path: str
    mode: int = 0o755


@dataclass(frozen=True)
class Layer:
    digest: str  # sha256 of the compressed blob
    size: int  # bytes of the compressed blob
    diff_id: str  # sha256 of the uncompressed tar


class _Digesting(io.RawIOBase):
    """A write-through wrapper that hashes and counts what passes."""

    def __init__(self, target: IO[bytes]):
        self.target, self.hasher, self.size = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.hasher.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)

    @property
    def digest(self) -> str:
        return f"sha256:{self.hasher.hexdigest()}"


def layer_write(entries: Iterable[LayerFile | LayerDirectory], out: IO[bytes]) -> Layer:
    """Write a reproducible gzip'd tar of ``entries`` to ``out``; its digests."""
    compressed = _Digesting(out)
    with gzip.GzipFile(filename="", fileobj=compressed, mode="wb", mtime=0, compresslevel=6) as gz:
        uncompressed = _Digesting(gz)
        with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for entry in sorted(entries, key=lambda e: _member_name(e.path)):
                info = tarfile.TarInfo(_member_name(entry.path))
                info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", entry.mode
                if isinstance(entry, LayerDirectory):
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif isinstance(entry.content, bytes):
                    info.size = len(entry.content)
                    tar.addfile(info, io.BytesIO(entry.content))
                else:
                    info.size = entry.size
                    tar.addfile(info, entry.content)
    return Layer(digest=compressed.digest, size=compressed.size, diff_id=uncompressed.digest)


def layer_bytes(entries: Iterable[LayerFile | LayerDirectory]) -> tuple[Layer, bytes]:
    buffer = io.BytesIO()
    layer = layer_write(entries, buffer)
    return layer, buffer.getvalue()


def _member_name(path: str) -> str:
    name = posixpath.normpath("/" + path).lstrip("/")
    if not name or name == ".":
        raise ValueError(f"{path!r} names no file")
    return name


def canonical_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def media_family(manifest_media_type: str) -> str:
    """OCI or Docker: the new image keeps the base image's family."""
    for family, types in MEDIA_TYPES.items():
        if manifest_media_type in (types["manifest"], types["index"]):
            return family
    raise ValueError(f"{manifest_media_type or 'no media type'} is not an image manifest Slipway can build on")


def platform_pick(index: dict[str, Any], *, os: str = "linux", architecture: str = "amd64") -> dict[str, Any]:
    """The descriptor of the index's manifest for ``os/architecture``."""
    for descriptor in index.get("manifests") or []:
        platform = descriptor.get("platform") or {}
        if platform.get("os") == os and platform.get("architecture") == architecture:
            return descriptor
    found = ", ".join(
        f"{(d.get('platform') or {}).get('os')}/{(d.get('platform') or {}).get('architecture')}"
        for d in index.get("manifests") or []
    )
    raise ValueError(f"the image index has no {os}/{architecture} manifest (it has: {found or 'none'})")


def env_merge(base_env: list[str], env: dict[str, str]) -> list[str]:
    """Base ``NAME=value`` entries, overridden in place; new names appended in name order."""
    merged, seen = [], set()
    for entry in base_env:
        name = entry.split("=", 1)[0]
        if name in env:
            entry = f"{name}={env[name]}"
            seen.add(name)
        merged.append(entry)
    return merged + [f"{name}={env[name]}" for name in sorted(env) if name not in seen]


@dataclass(frozen=True)
class NewLayer:
    layer: Layer
    created_by: str


def image_config(
    base: dict[str, Any], *, layers: list[NewLayer], env: dict[str, str], labels: dict[str, str]
) -> dict[str, Any]:
    """The base image's config with the new layers, environment and labels."""
    config = json.loads(json.dumps(base))  # a deep copy
    runtime = config.setdefault("config", {}) or {}
    config["config"] = runtime
    runtime["Env"] = env_merge(runtime.get("Env") or [], env)
    runtime["Labels"] = {**(runtime.get("Labels") or {}), **labels}
    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    base_layers = len(rootfs.get("diff_ids") or [])
    history = config.get("history")
    if history is None:  # history, when present, must list every layer: describe the base's too
        history = [{"created": EPOCH, "comment": "base image layer"} for _ in range(base_layers)]
    config["history"] = history + [{"created": EPOCH, "created_by": new.created_by} for new in layers]
    rootfs["diff_ids"] = [*(rootfs.get("diff_ids") or []), *(new.layer.diff_id for new in layers)]
    config["created"] = EPOCH
    return config


def image_manifest(
    *, family: str, config: bytes, layers: list[Layer], base_layers: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    types = MEDIA_TYPES[family]
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": types["manifest"],
        "config": {"mediaType": types["config"], "digest": _sha256(config), "size": len(config)},
        "layers": [*(base_layers or []), *({"mediaType": types["layer"], "digest": la.digest, "size": la.size}
                                   for la in layers)],
    }
    if annotations and family == OCI:
        manifest["annotations"] = annotations
    return manifest


def image_index(manifests: list[tuple[bytes, str, str]], *, family: str = OCI) -> dict[str, Any]:
    """An index of ``(manifest bytes, os, architecture)``."""
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPES[family]["index"],
        "manifests": [
            {"mediaType": MEDIA_TYPES[family]["manifest"], "digest": _sha256(body), "size": len(body),
             "platform": {"os": os, "architecture": architecture}}
            for body, os, architecture in manifests
        ],
    }


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
