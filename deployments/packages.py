"""Application packages: checking a package URL and fetching it for a build (an adapter; no ORM).

A package URL must be http(s) on an allow-listed host (``SLIPWAY_PACKAGE_HOSTS``);
redirects are followed only to allow-listed hosts; every connection goes through
the guarded client (``paas_site.outbound``: the address connected to must pass the
outbound policy); the download stops at ``SLIPWAY_PACKAGE_MAX_BYTES`` and is
checked against its sha256 when one was given.
"""
import hashlib
import posixpath
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO
from urllib.parse import unquote, urljoin, urlsplit

import requests
from django.conf import settings

from paas_site import outbound
from paas_site.errors import PermanentError, TransientError
from paas_site.outbound import GuardedSession, OutboundRefused, unreachable

PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][-._A-Za-z0-9]{0,199}$")
SHA256 = re.compile(r"^[a-f0-9]{64}$")
TIMEOUT = 15
MAX_REDIRECTS = 5
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FetchedPackage:
    file: IO[bytes]  # open for reading, at its start
    name: str
    size: int
    sha256: str


def package_name_check(name: str) -> str:
    """Why ``name`` cannot be a package's file name in the image ("" when it can)."""
    if not PACKAGE_NAME.match(name or ""):
        return "must be 1-200 letters, digits, '-', '_' or '.', starting with a letter or digit (e.g. app-1.2.war)."
    return ""


def package_url_check(url: str) -> str:
    """Why ``url`` may not be a package URL ("" when it may)."""
    problem = _source_check(url)
    if not problem and package_name_check(package_url_name(url)):
        problem = "must end in a file name of letters, digits, '-', '_' or '.' (e.g. …/app-1.2.war)."
    return problem


def _source_check(url: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL."
    if parts.username or parts.password:
        return "must not carry credentials."
    problem = outbound.url_check(url)
    if problem:
        return problem
    if not host_allowed(parts.hostname):
        allowed = ", ".join(settings.SLIPWAY_PACKAGE_HOSTS) or "none are configured (SLIPWAY_PACKAGE_HOSTS)"
        return f"host {parts.hostname} is not allowed for packages (allowed: {allowed})."
    return ""


def host_allowed(hostname: str) -> bool:
    hostname = hostname.lower().rstrip(".")
    for allowed in settings.SLIPWAY_PACKAGE_HOSTS:
        allowed = allowed.lower().rstrip(".")
        if hostname == allowed or (allowed.startswith("*.") and hostname.endswith(allowed[1:])):
            return True
    return False


def package_url_name(url: str) -> str:
    return posixpath.basename(unquote(urlsplit(url).path))


@contextmanager
def package_download(url: str, *, sha256: str = "") -> Iterator[FetchedPackage]:
    """Stream ``url`` into a temporary file, within the size limit, checked against ``sha256`` when given."""
    problem = package_url_check(url)
    if problem:
        raise PermanentError(f"package URL {url}: {problem}")
    limit = settings.SLIPWAY_PACKAGE_MAX_BYTES
    with GuardedSession() as session, tempfile.TemporaryFile() as spool:
        response = _get_following_allowed_redirects(session, url)
        with response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise PermanentError(f"package {url} is {declared} bytes; the limit is {limit} bytes")
            hasher, size = hashlib.sha256(), 0
            try:
                for chunk in response.iter_content(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise PermanentError(f"package {url} is larger than the limit of {limit} bytes")
                    hasher.update(chunk)
                    spool.write(chunk)
            except requests.RequestException as exc:
                raise unreachable(f"package {url} (the download broke off)", exc) from None
        actual = hasher.hexdigest()
        if sha256 and actual != sha256:
            raise PermanentError(f"package {url} has sha256 {actual}, not the expected {sha256}")
        spool.seek(0)
        yield FetchedPackage(file=spool, name=package_url_name(url), size=size, sha256=actual)


def _get_following_allowed_redirects(session: requests.Session, url: str) -> requests.Response:
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = session.get(url, stream=True, allow_redirects=False, timeout=TIMEOUT)
        except OutboundRefused as exc:
            raise OutboundRefused(f"package {url}: {exc.message}") from None
        except requests.RequestException as exc:
            raise unreachable(f"package {url}", exc) from None
        if response.is_redirect:
            target = urljoin(url, response.headers["Location"])
            response.close()
            problem = _source_check(target)
            if problem:
                raise PermanentError(f"package {url} redirects to {target}, which {problem.rstrip('.')}")
            url = target
            continue
        if response.status_code == 429 or response.status_code >= 500:
            response.close()
            raise TransientError(f"package {url} unavailable: HTTP {response.status_code}")
        if response.status_code >= 400:
            response.close()
            raise PermanentError(f"package {url} could not be fetched: HTTP {response.status_code}")
        return response
    raise PermanentError(f"package {url} redirects more than {MAX_REDIRECTS} times")


@contextmanager
def package_stored(file: IO[bytes], *, name: str, size: int, sha256: str) -> Iterator[FetchedPackage]:
    """An uploaded package, re-checked against the sha256 computed at upload (storage can rot)."""
    hasher = hashlib.sha256()
    for chunk in iter(lambda: file.read(CHUNK), b""):
        hasher.update(chunk)
    if hasher.hexdigest() != sha256:
        raise PermanentError(f"stored package {name} no longer matches its sha256 {sha256}")
    file.seek(0)
    yield FetchedPackage(file=file, name=name, size=size, sha256=sha256)
