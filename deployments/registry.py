"""The OCI registry adapter (distribution API v2) over ``requests``.

Resolves tags to digests, reads manifests and blobs, uploads and mounts blobs,
and puts manifests. Authentication follows the registry's challenge: HTTP
basic with the configured credentials, or the bearer-token flow (the
credentials, if any, go to the token service, which must be on the registry's
host or one of ``SLIPWAY_REGISTRY_TOKEN_HOSTS``). HTTPS is verified against the
system CAs or a configured CA bundle; a loopback registry is spoken to over
plain HTTP unless configured otherwise (as Docker treats ``localhost``).
Every request goes through the guarded client (``paas_site.outbound``): the
address is checked when connecting, redirects stay on the registry's origin and
an upload location on another host is refused, so credentials reach only the
registry and its token service.

Errors are the project's: ``TransientError`` when the registry is unreachable
or answers 5xx/429, ``PermanentError`` for 401/403/404 and invalid answers,
each naming the registry and the image. Credentials and socket details never appear in them.
"""
import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings

from paas_site.errors import PermanentError, TransientError
from paas_site.metrics import call_errors_counted
from paas_site.outbound import GuardedSession, OutboundRefused, origin, unreachable

from .images import parse_image_reference

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_TYPES = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST])
TIMEOUT = 15
BLOB_TIMEOUT = 300  # a large layer may take a while; connecting still fails fast (TIMEOUT)
DOCKER_HUB = "registry-1.docker.io"
LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach one registry host."""

    host: str
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""
    plain_http: bool = False

    @property
    def base_url(self) -> str:
        return f"{'http' if self.plain_http else 'https'}://{self.host}"


def registry_access(host: str) -> RegistryAccess:
    """The configured registry gets its credentials and CA; any other registry is read anonymously."""
    loopback = host.rsplit(":", 1)[0] in LOOPBACK
    if host and host == settings.SLIPWAY_REGISTRY:
        plain_http = settings.SLIPWAY_REGISTRY_PLAIN_HTTP
        return RegistryAccess(
            host=host, username=settings.SLIPWAY_REGISTRY_USERNAME, password=settings.SLIPWAY_REGISTRY_PASSWORD,
            ca_file=settings.SLIPWAY_REGISTRY_CA_FILE,
            plain_http=(loopback and not settings.SLIPWAY_REGISTRY_CA_FILE) if plain_http is None else plain_http,
        )
    return RegistryAccess(host=host or DOCKER_HUB, plain_http=loopback)


def repository_path(registry: str, repository: str) -> str:
    """Docker Hub's official images live under ``library/``."""
    return repository if registry or "/" in repository else f"library/{repository}"


def resolve_digest(reference: str) -> str:
    """The ``sha256:…`` digest a tag points to now (a digest reference returns its own)."""
    image = parse_image_reference(reference)
    if image.digest:
        return image.digest
    client = RegistryClient(registry_access(image.registry))
    return client.manifest_digest(repository_path(image.registry, image.repository), image.tag or "latest",
                                  image=reference)


def digest_confirm(reference: str, digest: str) -> None:
    """Check that the registry still holds the manifest ``digest`` of ``reference``'s repository.

    ``PermanentError`` when it is gone (deleted since it was pinned), ``TransientError`` when unreachable.
    """
    image = parse_image_reference(reference)
    client = RegistryClient(registry_access(image.registry))
    client.manifest_digest(repository_path(image.registry, image.repository), digest, image=f"{image.name}@{digest}")


@dataclass
class Manifest:
    body: bytes
    media_type: str
    digest: str


class RegistryClient:
    """One registry host; ``image`` arguments only name the image in error messages."""

    def __init__(self, access: RegistryAccess):
        self.access = access
        self.host = access.host
        self.session = GuardedSession()
        self.session.verify = access.ca_file or True
        self._authorization = ""

    # -- manifests ------------------------------------------------------------------
    def manifest_digest(self, repository: str, reference: str, *, image: str) -> str:
        response = self._call("HEAD", f"/v2/{repository}/manifests/{reference}", image=image,
                              headers={"Accept": MANIFEST_TYPES})
        digest = response.headers.get("Docker-Content-Digest", "")
        if not digest.startswith("sha256:"):
            raise PermanentError(f"registry {self.host} gave no digest for {image}")
        return digest

    def manifest_get(self, repository: str, reference: str, *, image: str) -> Manifest:
        response = self._call("GET", f"/v2/{repository}/manifests/{reference}", image=image,
                              headers={"Accept": MANIFEST_TYPES})
        body = response.content
        digest = sha256_digest(body)
        if reference.startswith("sha256:") and digest != reference:
            raise PermanentError(f"registry {self.host} sent a manifest for {image} whose digest is {digest}, "
                                 f"not {reference}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(body=body, media_type=media_type, digest=digest)

    def manifest_put(self, repository: str, reference: str, body: bytes, media_type: str, *, image: str) -> str:
        response = self._call("PUT", f"/v2/{repository}/manifests/{reference}", image=image, data=body,
                              headers={"Content-Type": media_type})
        digest = sha256_digest(body)
        stored = response.headers.get("Docker-Content-Digest", digest)
        if stored != digest:
            raise PermanentError(f"registry {self.host} stored the manifest of {image} as {stored}, not {digest}")
        return digest

    # -- blobs ----------------------------------------------------------------------
    def blob_exists(self, repository: str, digest: str, *, image: str) -> bool:
        return self._call("HEAD", f"/v2/{repository}/blobs/{digest}", image=image, missing_ok=True).status_code == 200

    def blob_get(self, repository: str, digest: str, *, image: str) -> bytes:
        """A small blob (a config), checked against its digest."""
        body = self._call("GET", f"/v2/{repository}/blobs/{digest}", image=image).content
        if sha256_digest(body) != digest:
            raise PermanentError(f"registry {self.host} sent blob {digest} of {image} with other content")
        return body

    @contextmanager
    def blob_download(self, repository: str, digest: str, *, image: str) -> Iterator[IO[bytes]]:
        """A layer spooled to a temporary file (checked against its digest), open for reading."""
        with tempfile.TemporaryFile() as spool:
            response = self._call("GET", f"/v2/{repository}/blobs/{digest}", image=image, stream=True)
            hasher = hashlib.sha256()
            try:
                for chunk in response.iter_content(CHUNK):
                    hasher.update(chunk)
                    spool.write(chunk)
            except requests.RequestException as exc:
                raise unreachable(f"registry {self.host} (broke off sending {digest} of {image})", exc) from None
            if f"sha256:{hasher.hexdigest()}" != digest:
                raise PermanentError(f"registry {self.host} sent blob {digest} of {image} with other content")
            spool.seek(0)
            yield spool

    def blob_upload(self, repository: str, digest: str, data: bytes | IO[bytes], *, image: str) -> None:
        """Monolithic upload: start a session, then PUT the content with its digest."""
        started = self._call("POST", f"/v2/{repository}/blobs/uploads/", image=image, data=b"")
        self._blob_put(started, digest, data, image=image)

    def blob_mount(self, repository: str, digest: str, from_repository: str, *, image: str) -> bool:
        """Mount a blob from another repository of this registry; False when the registry declined."""
        response = self._call("POST", f"/v2/{repository}/blobs/uploads/", image=image, data=b"",
                              params={"mount": digest, "from": from_repository})
        return response.status_code == 201

    def _blob_put(self, started: requests.Response, digest: str, data: bytes | IO[bytes], *, image: str) -> None:
        location = started.headers.get("Location")
        if not location:
            raise PermanentError(f"registry {self.host} gave no upload location for {image}")
        # the Location carries the upload's state in its query: add the digest to it, don't replace it
        url = urljoin(self.access.base_url + "/", location)
        if origin(url) != origin(self.access.base_url):  # our credentials go with the PUT: never elsewhere
            raise PermanentError(f"registry {self.host} gave an upload location on another host for {image}")
        url += ("&" if "?" in url else "?") + f"digest={digest}"
        self._call("PUT", url, image=image, data=data, headers={"Content-Type": "application/octet-stream"},
                   timeout=BLOB_TIMEOUT)

    # -- HTTP, auth, errors -----------------------------------------------------------
    def _call(self, method: str, path: str, *, image: str, missing_ok: bool = False,
              timeout: float = TIMEOUT, **kwargs: Any) -> requests.Response:
        with call_errors_counted("registry", self.host):
            url = path if path.startswith(("http://", "https://")) else self.access.base_url + path
            response = self._send(method, url, image=image, timeout=timeout, **kwargs)
            if response.status_code == 401:
                challenge = response.headers.get("WWW-Authenticate", "")
                if self._answer(challenge, image=image):
                    if hasattr(kwargs.get("data"), "seek"):
                        kwargs["data"].seek(0)
                    response = self._send(method, url, image=image, timeout=timeout, **kwargs)
            if response.status_code < 400 or (missing_ok and response.status_code == 404):
                return response
            raise self._error(response, image)

    def _send(self, method: str, url: str, *, image: str, timeout: float, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self._authorization:
            headers["Authorization"] = self._authorization
        try:
            return self.session.request(method, url, headers=headers, timeout=(TIMEOUT, timeout), **kwargs)
        except OutboundRefused as exc:
            raise OutboundRefused(f"registry {self.host}: {exc.message}") from None
        except requests.exceptions.SSLError as exc:
            raise PermanentError(
                f"registry {self.host}: its TLS certificate is not trusted ({_reason(exc)}); "
                "set SLIPWAY_REGISTRY_CA_FILE to the CA bundle that signed it"
            ) from None
        except requests.RequestException as exc:
            raise unreachable(f"registry {self.host}", exc) from None

    def _answer(self, challenge: str, *, image: str) -> bool:
        """Set the authorization a 401 challenge asks for; False when there is nothing new to try."""
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic" and self.access.username and not self._authorization.startswith("Basic"):
            self._authorization = requests.auth._basic_auth_str(self.access.username, self.access.password)
            return True
        if scheme.lower() == "bearer":
            token = self._bearer_token(dict(requests.utils.parse_dict_header(params)))
            if f"Bearer {token}" != self._authorization:
                self._authorization = f"Bearer {token}"
                return True
        return False

    def _bearer_token(self, params: dict[str, str]) -> str:
        realm = params.pop("realm", "") or ""
        if not realm.startswith(("https://", "http://")):
            raise PermanentError(f"registry {self.host} sent an unusable auth challenge")
        if not token_realm_allowed(realm, self.access):
            raise OutboundRefused(f"registry {self.host} sent a token realm on host {urlsplit(realm).netloc}, which "
                                  "is neither the registry's host nor in SLIPWAY_REGISTRY_TOKEN_HOSTS")
        query = [("service", params["service"])] if params.get("service") else []
        query += [("scope", scope) for scope in (params.get("scope") or "").split()]
        auth = (self.access.username, self.access.password) if self.access.username else None
        try:
            response = self.session.get(realm, params=query, auth=auth, timeout=TIMEOUT)
        except OutboundRefused as exc:
            raise OutboundRefused(f"registry {self.host} token endpoint: {exc.message}") from None
        except requests.exceptions.SSLError as exc:
            raise PermanentError(f"registry {self.host} token endpoint: TLS certificate not trusted ({_reason(exc)})"
                                 ) from None
        except requests.RequestException as exc:
            raise unreachable(f"registry {self.host} token endpoint", exc) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"registry {self.host} token endpoint unavailable: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"registry {self.host} rejected credentials: token endpoint answered HTTP "
                                 f"{response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not token or not isinstance(token, str):
            # without this, the retry would be challenged again and ask for a token again, endlessly
            raise PermanentError(f"registry {self.host} token endpoint gave no token")
        return token

    def _error(self, response: requests.Response, image: str) -> Exception:
        status = response.status_code
        if status == 401:
            return PermanentError(f"registry {self.host} rejected credentials for {image}")
        if status == 403:
            return PermanentError(f"registry {self.host} denied access to {image}")
        if status == 404:
            return PermanentError(f"image {image} not found in registry {self.host}")
        if status == 429 or status >= 500:
            return TransientError(f"registry {self.host} unavailable: HTTP {status}")
        return PermanentError(f"registry {self.host} refused {image}: HTTP {status}{_registry_message(response)}")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def copy_blob(source: RegistryClient, source_repository: str, target: RegistryClient, target_repository: str,
              digest: str, *, image: str) -> str:
    """Make a blob present in the target repository: already there, mounted (same registry), or copied."""
    if target.blob_exists(target_repository, digest, image=image):
        return "present"
    if source.host == target.host and target.blob_mount(target_repository, digest, source_repository, image=image):
        return "mounted"
    with source.blob_download(source_repository, digest, image=image) as blob:
        target.blob_upload(target_repository, digest, blob, image=image)
    return "copied"


def token_realm_allowed(realm: str, access: RegistryAccess) -> bool:
    """A token service on the registry's own host, or one a platform admin listed."""
    host = (urlsplit(realm).hostname or "").lower()
    registry_host = (urlsplit(access.base_url).hostname or "").lower()
    return host == registry_host or host in {h.lower() for h in settings.SLIPWAY_REGISTRY_TOKEN_HOSTS}


def _registry_message(response: requests.Response) -> str:
    """The first message of the distribution API's ``{"errors": [...]}`` body, if any."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return f" ({first.get('code', '')}: {first.get('message', '')})"
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"

