"""A real OCI registry (Debian's ``docker-registry``, CNCF distribution 2.8) for the test session.

``.ci/test`` installs the package; the ``registry`` fixture runs it on a free
loopback port with its own config and storage, and pushes small but real OCI
images through the distribution API.
"""
import gzip
import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
STARTUP_TIMEOUT = 10
CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {host}
"""


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RegistryServer:
    """``docker-registry serve`` on ``127.0.0.1:<free port>``, anonymous and over plain HTTP."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.host = f"127.0.0.1:{_free_port()}"
        self.url = f"http://{self.host}"
        self.log_path = workdir / "registry.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if not shutil.which("docker-registry"):
            pytest.fail("docker-registry is not installed: run the tests through .ci/test, which installs it "
                        "(apt-get install docker-registry)")
        config = self.workdir / "config.yml"
        config.write_text(CONFIG.format(storage=self.workdir / "storage", host=self.host))
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        exit_code = self.process.poll()
        self.stop()
        problem = f"exited with code {exit_code}" if exit_code is not None else f"did not answer within {STARTUP_TIMEOUT} s"
        pytest.fail(f"docker-registry on {self.host} {problem} (waiting for GET /v2/); its log:\n{self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else "(no log)"

    # -- pushing -----------------------------------------------------------------------
    def push_image(self, repository: str, tag: str, *, layers: int = 1) -> str:
        """Push a fresh OCI image (each call has different content) as ``repository:tag``; its manifest digest."""
        nonce = uuid.uuid4().hex
        layer_entries, diff_ids = [], []
        for index in range(layers):
            tar = _layer_tar(f"{repository}:{tag} layer {index} {nonce}\n".encode())
            blob = gzip.compress(tar, mtime=0)
            self.push_blob(repository, blob)
            layer_entries.append({"mediaType": OCI_LAYER, "digest": _sha256(blob), "size": len(blob)})
            diff_ids.append(_sha256(tar))
        config = json.dumps({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/app"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }).encode()
        self.push_blob(repository, config)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _sha256(config), "size": len(config)},
            "layers": layer_entries,
        }).encode()
        response = self._call(
            "PUT", f"{self.url}/v2/{repository}/manifests/{tag}", data=manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        digest = _sha256(manifest)
        assert response.headers.get("Docker-Content-Digest") == digest, "the registry stored other bytes than were pushed"
        return digest

    def push_blob(self, repository: str, blob: bytes) -> str:
        response = self._call("POST", f"{self.url}/v2/{repository}/blobs/uploads/", data=b"")
        # the Location carries the upload's `_state` query: add the digest to it, don't replace it
        location = urllib.parse.urljoin(self.url, response.headers["Location"])
        digest = _sha256(blob)
        separator = "&" if "?" in location else "?"
        self._call(
            "PUT", f"{location}{separator}digest={urllib.parse.quote(digest)}", data=blob,
            headers={"Content-Type": "application/octet-stream"},
        )
        return digest

    def _call(self, method: str, url: str, *, data: bytes, headers: dict[str, str] | None = None):
        request = urllib.request.Request(url, method=method, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                return response
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            pytest.fail(f"registry refused {method} {url}: HTTP {exc.code} {body}\nits log:\n{self.log()}")


def _layer_tar(content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("app/build-info.txt")
        info.size, info.mode, info.mtime = len(content), 0o644, 0
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A running ``docker-registry`` for the session: ``.host`` and ``.push_image(repository, tag)``."""
    server = RegistryServer(tmp_path_factory.mktemp("registry"))
    server.start()
    yield server
    server.stop()
