"""PowerDNS Authoritative Server through its HTTP API (v1), over the guarded client (``paas_site.outbound``).

``GET /api/v1/servers/{server}/zones/{zone}`` reads record sets (``?rrset_name=``
narrows them to one name); ``PATCH`` with ``changetype`` ``REPLACE``/``DELETE``
changes them in one transaction and answers 204. Connection failures,
timeouts, 429 and 5xx are :class:`TransientError`; a rejected API key, a
missing zone and refused changes (422, with PowerDNS's own reason) are
:class:`PermanentError`. The API key travels only in the ``X-API-Key`` header, and only to the
API URL's host: a redirect is never followed.
"""
import json
import urllib.parse
from collections.abc import Iterable, Sequence
from typing import Any

import requests

from paas_site.errors import PermanentError, TransientError
from paas_site.metrics import call_errors_counted
from paas_site.outbound import GuardedSession, OutboundRefused, unreachable

from . import RRset, RRsetKey, ZoneAccess

TIMEOUT = 10.0
MAX_ERROR_TEXT = 500


class PowerDNSProvider:
    def __init__(self, zone: ZoneAccess, *, timeout: float = TIMEOUT):
        self.zone = zone
        self.timeout = timeout
        base = zone.api_url.rstrip("/").removesuffix("/api/v1")
        server, name = (urllib.parse.quote(part, safe="") for part in (zone.server_id, zone.name))
        self.zone_url = f"{base}/api/v1/servers/{server}/zones/{name}"

    def __repr__(self) -> str:
        return f"PowerDNSProvider(zone={self.zone.name!r}, api_url={self.zone.api_url!r})"

    def rrsets(self, names: Iterable[str] | None = None) -> dict[RRsetKey, RRset]:
        if names is None:
            return _parse_rrsets(self._call("GET", self.zone_url))
        found: dict[RRsetKey, RRset] = {}
        for name in dict.fromkeys(names):
            query = urllib.parse.urlencode({"rrset_name": name})
            found.update(_parse_rrsets(self._call("GET", f"{self.zone_url}?{query}")))
        return found

    def apply(self, *, replace: Sequence[RRset] = (), delete: Sequence[RRsetKey] = ()) -> None:
        changes = [{"name": name, "type": type_, "changetype": "DELETE"} for name, type_ in delete]
        changes += [
            {
                "name": rrset.name, "type": rrset.type, "ttl": rrset.ttl, "changetype": "REPLACE",
                "records": [{"content": content, "disabled": False} for content in rrset.contents],
            }
            for rrset in replace
        ]
        if changes:
            self._call("PATCH", self.zone_url, {"rrsets": changes})

    def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        with call_errors_counted("dns", self.zone.name):
            return self._request(method, url, body)

    def _request(self, method: str, url: str, body: dict[str, Any] | None) -> Any:
        zone = self.zone.name
        if not url.startswith(("http://", "https://")):
            raise PermanentError(f"DNS zone {zone} has no usable PowerDNS API URL ({self.zone.api_url!r}).")
        headers = {"X-API-Key": self.zone.api_key, "Accept": "application/json", "Content-Type": "application/json"}
        try:
            with GuardedSession() as session:  # no redirect is followed: the key goes to the API URL's host only
                response = session.request(method, url, data=json.dumps(body).encode() if body is not None else None,
                                           headers=headers, timeout=self.timeout, allow_redirects=False)
        except OutboundRefused as exc:
            raise OutboundRefused(f"DNS provider {zone}: {exc.message}") from None
        except requests.RequestException as exc:
            raise unreachable(f"DNS provider {zone}", exc) from None
        if 300 <= response.status_code < 400:
            raise PermanentError(f"DNS provider {zone} answered with a redirect (HTTP {response.status_code}), which "
                                 "is not followed: point the zone's API URL at the PowerDNS API itself.")
        if response.status_code >= 400:
            raise self._http_error(response.status_code, response.content)
        payload = response.content
        if not payload:
            return None
        try:
            return json.loads(payload)
        except ValueError:
            raise PermanentError(f"DNS provider {zone} answered {method} with something other than JSON.") from None

    def _http_error(self, status: int, body: bytes) -> Exception:
        zone, reason = self.zone.name, _error_text(body)
        if status in (401, 403):
            return PermanentError(
                f"DNS provider {zone} rejected the API key (HTTP {status}): check the zone's PowerDNS API key."
            )
        if status == 404:
            return PermanentError(
                f"DNS zone {zone} does not exist on the PowerDNS server {self.zone.api_url} "
                f"(server id {self.zone.server_id!r})."
            )
        if status in (400, 422):
            return PermanentError(f"DNS provider {zone} refused the change: {reason}")
        if status == 429 or status >= 500:
            return TransientError(f"DNS provider {zone} unavailable: HTTP {status} {reason}".rstrip())
        return PermanentError(f"DNS provider {zone} answered HTTP {status}: {reason}".rstrip())


def _error_text(body: bytes) -> str:
    text = body.decode(errors="replace").strip()
    try:
        text = str(json.loads(text).get("error") or text)
    except (ValueError, AttributeError):
        pass
    return text[:MAX_ERROR_TEXT]


def _parse_rrsets(zone: Any) -> dict[RRsetKey, RRset]:
    """Enabled records only: a record set whose records are all disabled does not answer queries."""
    found = {}
    for item in (zone or {}).get("rrsets", []):
        contents = tuple(sorted(record["content"] for record in item.get("records", []) if not record.get("disabled")))
        if contents:
            rrset = RRset(name=item["name"], type=item["type"], ttl=int(item.get("ttl", 0)), contents=contents)
            found[rrset.key] = rrset
    return found
