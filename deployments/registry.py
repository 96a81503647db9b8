"""The OCI registry adapter (distribution API v2): resolve tags to digests.

Anonymous access, with the bearer-token challenge answered as the registry
asks; registries on loopback are spoken to over plain HTTP (as Docker treats
``localhost``), every other one over HTTPS.
"""
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from paas_site.errors import PermanentError, TransientError

from .images import ImageReference, parse_image_reference

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
TIMEOUT = 15
DOCKER_HUB = "registry-1.docker.io"


@dataclass(frozen=True)
class Registry:
    host: str

    @property
    def base_url(self) -> str:
        hostname = self.host.rsplit(":", 1)[0]
        scheme = "http" if hostname in ("localhost", "127.0.0.1", "[::1]") else "https"
        return f"{scheme}://{self.host}"


def resolve_digest(reference: str) -> str:
    """The ``sha256:…`` digest a tag points to now (a digest reference returns its own)."""
    image = parse_image_reference(reference)
    if image.digest:
        return image.digest
    registry = Registry(image.registry or DOCKER_HUB)
    repository = image.repository if image.registry or "/" in image.repository else f"library/{image.repository}"
    url = f"{registry.base_url}/v2/{repository}/manifests/{image.tag or 'latest'}"
    with _request(url, image, method="HEAD", headers={"Accept": MANIFEST_TYPES}) as response:
        digest = response.headers.get("Docker-Content-Digest", "")
    if not digest.startswith("sha256:"):
        raise PermanentError(f"registry {registry.host} gave no digest for {reference}")
    return digest


def _request(url: str, image: ImageReference, *, method: str, headers: dict[str, str], token: str = ""):
    if token:
        headers = {**headers, "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, method=method, headers=headers)
    host = image.registry or DOCKER_HUB
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310 (URL built from a validated reference)
    except urllib.error.HTTPError as exc:
        challenge = exc.headers.get("WWW-Authenticate", "")
        if exc.code == 401 and not token and challenge.lower().startswith("bearer "):
            return _request(url, image, method=method, headers=headers, token=_bearer_token(challenge, host))
        if exc.code == 401:
            raise PermanentError(f"registry {host} rejected credentials for {image}") from None
        if exc.code == 404:
            raise PermanentError(f"image {image} not found in registry {host}") from None
        if exc.code == 429 or exc.code >= 500:
            raise TransientError(f"registry {host} unavailable: HTTP {exc.code}") from None
        raise PermanentError(f"registry {host} refused {image}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TransientError(f"registry {host} unreachable: {getattr(exc, 'reason', exc)}") from None
    except http.client.HTTPException as exc:
        raise TransientError(f"registry {host} gave no valid HTTP answer: {exc!r}") from None


def _bearer_token(challenge: str, host: str) -> str:
    """Answer a ``Bearer realm=…,service=…,scope=…`` challenge anonymously."""
    params = dict(urllib.request.parse_keqv_list(urllib.request.parse_http_list(challenge[len("bearer "):])))
    realm = params.pop("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise PermanentError(f"registry {host} sent an unusable auth challenge")
    separator = "&" if "?" in realm else "?"
    try:
        with urllib.request.urlopen(f"{realm}{separator}{urllib.parse.urlencode(params)}", timeout=TIMEOUT) as response:  # noqa: S310
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == 429 or exc.code >= 500:
            raise TransientError(f"registry {host} token endpoint unavailable: HTTP {exc.code}") from None
        raise PermanentError(f"registry {host} rejected credentials: token endpoint answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        raise TransientError(f"registry {host} token endpoint unreachable: {getattr(exc, 'reason', exc)}") from None
    token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
    if not token or not isinstance(token, str):
        # without this, the retry would be challenged again and ask for a token again, endlessly
        raise PermanentError(f"registry {host} token endpoint gave no token")
    return token
