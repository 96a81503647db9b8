"""A real OCI registry (Debian's ``docker-registry``, CNCF distribution 2.8) for the test session.

``.ci/test`` installs the package; the ``registry`` fixture runs it on a free
loopback port with its own config and storage, and pushes small but real OCI
images through the distribution API. ``RegistryServer`` also runs it with
HTTPS (a certificate from a throwaway CA), htpasswd basic auth, or token auth
against :class:`TokenIssuer`, a small real token service.
"""
import base64
import datetime
import gzip
import hashlib
import io
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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
{extra}"""


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RegistryServer:
    """``docker-registry serve`` on ``127.0.0.1:<free port>``, anonymous and over plain HTTP."""

    def __init__(self, workdir: Path, *, tls: "CertificateAuthority | None" = None, auth: str = ""):
        self.workdir = workdir
        self.host = f"127.0.0.1:{_free_port()}"
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        self.tls, self.auth = tls, auth
        self.log_path = workdir / "registry.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if not shutil.which("docker-registry"):
            pytest.fail("docker-registry is not installed: run the tests through .ci/test, which installs it "
                        "(apt-get install docker-registry)")
        config = self.workdir / "config.yml"
        extra = ""
        if self.tls:  # under http:, so before the top-level auth: block
            cert, key = self.tls.issue(self.workdir / "server", "127.0.0.1")
            extra = f"  tls:\n    certificate: {cert}\n    key: {key}\n"
        extra += self.auth
        config.write_text(CONFIG.format(storage=self.workdir / "storage", host=self.host, extra=extra))
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/v2/", timeout=1, context=self._ssl()) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code == 401:  # up, and wants credentials
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

    def _ssl(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.tls.cert)) if self.tls else None

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


# -- HTTPS, basic auth, token auth -------------------------------------------------------
class CertificateAuthority:
    """A throwaway CA (``cryptography``) issuing certificates for loopback servers."""

    def __init__(self, workdir: Path, name: str = "Slipway test CA"):

        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            self._builder(subject, subject, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        workdir.mkdir(parents=True, exist_ok=True)
        self.cert = workdir / "ca.pem"
        self.cert.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def _builder(self, subject, issuer, public_key):
        now = datetime.datetime.now(datetime.UTC)
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1)))

    def issue(self, prefix: Path, ip: str) -> tuple[Path, Path]:
        """A server certificate for ``ip``: the certificate and key files."""
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]), self.certificate.subject,
                          key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert, key_file = prefix.with_suffix(".crt"), prefix.with_suffix(".key")
        cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.TraditionalOpenSSL,
                                               serialization.NoEncryption()))
        return cert, key_file


def htpasswd_auth(workdir: Path, username: str, password: str) -> str:
    """The registry config for htpasswd basic auth with one user (bcrypt, as the registry requires)."""
    path = workdir / "htpasswd"
    workdir.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    return f"auth:\n  htpasswd:\n    realm: slipway-test\n    path: {path}\n"


class TokenIssuer:
    """A small real token service for a registry with ``auth: token``.

    It answers ``GET /token?service=…&scope=…`` for one user (HTTP basic) with a
    JWT signed RS256 by its own certificate (in the ``x5c`` header; the
    registry trusts it through ``rootcertbundle``), granting the scopes asked.
    Anyone else gets 401. ``requests`` records (scopes, user) per request.
    """

    SERVICE = "slipway-test-registry"
    ISSUER = "slipway-test-issuer"

    def __init__(self, workdir: Path, username: str, password: str):

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        workdir.mkdir(parents=True, exist_ok=True)
        self.bundle = workdir / "token-signer.pem"
        self.bundle.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
        self.credentials = f"{username}:{password}"
        self.requests: list[tuple[list[str], str]] = []
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
                user = base64.b64decode(encoded).decode() if scheme == "Basic" else ""
                issuer.requests.append((query.get("scope", []), user.split(":")[0]))
                if user != issuer.credentials:
                    self._reply(401, {"details": "wrong credentials"})
                    return
                self._reply(200, {"token": issuer.token(query.get("scope", []), user.split(":")[0])})

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self.server.server_port}/token"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def registry_auth(self) -> str:
        return (f"auth:\n  token:\n    realm: {self.realm}\n    service: {self.SERVICE}\n"
                f"    issuer: {self.ISSUER}\n    rootcertbundle: {self.bundle}\n")

    def token(self, scopes: list[str], subject: str) -> str:
        access = []
        for scope in " ".join(scopes).split():
            kind, name, actions = scope.split(":")[0], ":".join(scope.split(":")[1:-1]), scope.split(":")[-1]
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {"iss": self.ISSUER, "sub": subject, "aud": self.SERVICE, "iat": now - 10, "nbf": now - 10,
                  "exp": now + 300, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
