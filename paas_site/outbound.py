"""The one guarded HTTP client for every request Slipway makes on a user's behalf.

The rule it keeps: a connection is opened only to an address the outbound policy allows, and the
address checked is the address connected to. The host name is resolved once, each resolved address
is checked, and the socket connects to that same address (no second lookup, so no DNS-rebinding
window); TLS still verifies the certificate and sends SNI for the host name. Refused unless a
platform admin allowed a CIDR in ``SLIPWAY_OUTBOUND_ALLOW``: loopback, link-local (cloud metadata),
private and shared ranges, unspecified, multicast, reserved, and IPv4 addresses hidden in IPv6
(mapped, compatible, 6to4, NAT64). Proxies from the environment are never used.

Redirects are followed only to the same scheme, host and port (each hop's address checked again);
anything else is an :class:`OutboundRefused`. Credentials therefore never reach another host.
Errors say "refused by the outbound policy" or "unreachable", never the socket's own words (errno,
"connection refused"), which would turn a step log into a port scanner; those go to the server log.
"""
import functools
import ipaddress
import logging
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from .errors import PermanentError, TransientError

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Refused unless allowed; most are not "global" anyway, listed so the rule reads here, not in ipaddress.
REFUSED_NETWORKS = tuple(ipaddress.ip_network(cidr) for cidr in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
REFUSED = "refused by the outbound policy"


class OutboundRefused(PermanentError):
    """The outbound policy does not allow this request (address, scheme or redirect)."""

    code = "outbound_refused"


class OutboundUnreachable(TransientError):
    """The target did not answer (no detail: which port is closed is not the user's business)."""


def allowed_networks() -> tuple[IPNetwork, ...]:
    return _parse_networks(tuple(settings.SLIPWAY_OUTBOUND_ALLOW))


@functools.lru_cache(maxsize=8)
def _parse_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    packed = int(address)
    if address in NAT64 or (packed >> 32 == 0 and packed > 1):  # NAT64, or the deprecated ::a.b.c.d
        return ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    return None


def address_allowed(address: IPAddress | str) -> bool:
    """Whether a connection to ``address`` is allowed: a public address, or one inside an allowed CIDR."""
    address = ipaddress.ip_address(address)
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    embedded = embedded_ipv4(address)
    candidates = [address] + ([embedded] if embedded else [])
    if any(candidate in network for candidate in candidates for network in allowed_networks()
           if candidate.version == network.version):
        return True
    return _public(embedded or address)  # an IPv6 form of an IPv4 address is judged as that address


def _public(address: IPAddress) -> bool:
    if any(address in network for network in REFUSED_NETWORKS if address.version == network.version):
        return False
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_link_local)


def url_check(url: str) -> str:
    """Why ``url`` can never be fetched ("" when it may be): a bad scheme, or a literal address refused.

    Names are resolved only when connecting (a check at filing time proves nothing about later lookups).
    """
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL."
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return ""
    return "" if address_allowed(literal) else f"points at an address {REFUSED}."


def guarded_create_connection(
    address: tuple[str, int], timeout: Any = _DEFAULT_TIMEOUT, source_address: tuple[str, int] | None = None,
    socket_options: Iterable[tuple[int, int, int]] | None = None,
) -> socket.socket:
    """Resolve once, refuse what the policy refuses, connect the socket to the very address checked."""
    host, port = address
    host = host.strip("[]")
    try:
        results = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise NewConnectionError(None, f"cannot resolve {host}: {exc}") from exc
    refused, error = [], None
    for family, type_, proto, _, sockaddr in results:
        if not address_allowed(sockaddr[0]):
            refused.append(sockaddr[0])
            continue
        sock = socket.socket(family, type_, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is not _DEFAULT_TIMEOUT:  # urllib3's "no timeout given": keep the socket's default
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    if refused and error is None:
        logger.warning("outbound connection to %s:%s refused by policy (resolved to %s)", host, port, refused)
        raise OutboundRefused(f"{host} is {REFUSED}")
    raise error or OSError(f"no address for {host}")


class _GuardedConnectionMixin:
    host: str
    _dns_host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        try:
            return guarded_create_connection((self._dns_host, self.port), self.timeout,
                                             source_address=self.source_address, socket_options=self.socket_options)
        except OutboundRefused:
            raise
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from exc
        except NewConnectionError:
            raise
        except OSError as exc:
            raise NewConnectionError(self, f"failed to connect: {exc}") from exc


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass  # SNI and the certificate check use self.host, the name, not the address connected to


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        raise OutboundRefused(f"proxies are {REFUSED}")


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class GuardedSession(requests.Session):
    """A ``requests`` session whose every connection passes the outbound policy.

    Use it as a normal session; redirects (when asked for) stay on the same origin.
    """

    max_redirects_default = 5

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False  # no proxies or netrc credentials picked up from the environment
        self.max_redirects = self.max_redirects_default
        adapter = GuardedAdapter(max_retries=0)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.adapters.pop("", None)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if urlsplit(request.url or "").scheme not in ("http", "https"):
            raise OutboundRefused(f"only http(s) URLs may be requested: {REFUSED}")
        return super().send(request, **kwargs)

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is None:
            return None
        absolute = requests.compat.urljoin(resp.url, target)
        if origin(absolute) != origin(resp.url):
            raise OutboundRefused(f"{origin(resp.url)[1]} redirected to another host: {REFUSED}")
        return target

    def resolve_redirects(self, resp: requests.Response, req: requests.PreparedRequest, *args: Any,
                          yield_requests: bool = False, **kwargs: Any) -> Any:
        if yield_requests:  # only computes ``response.next`` for a caller that did not follow: no check, no hop
            return iter(())
        return super().resolve_redirects(resp, req, *args, **kwargs)

    def rebuild_proxies(self, prepared_request: requests.PreparedRequest, proxies: Any) -> dict:
        return {}


def unreachable(what: str, exc: BaseException) -> OutboundUnreachable:
    """The error to show for a failed connection; the detail only goes to the server log."""
    logger.info("outbound: %s unreachable: %s", what, exc)
    return OutboundUnreachable(f"{what} unreachable")
