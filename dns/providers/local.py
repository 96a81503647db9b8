"""The embedded default: a zone kept in Slipway's own database.

Slipway's Record rows are the truth, so there is nothing outside to change:
the provider answers from the rows it was given, and :func:`export_zone_file`
renders them as a BIND zone file for any nameserver to load.
"""
from collections.abc import Iterable, Sequence

from . import RRset, RRsetKey, ZoneAccess

# A local zone has no nameserver of its own; these make the exported file loadable.
SOA_TIMERS = "3600 600 604800 300"  # refresh retry expire negative-TTL
NAMESERVER = "localhost."


class LocalProvider:
    def __init__(self, zone: ZoneAccess, rrsets: Iterable[RRset]):
        self.zone = zone
        self._rrsets = {rrset.key: rrset for rrset in rrsets}

    def rrsets(self, names: Iterable[str] | None = None) -> dict[RRsetKey, RRset]:
        if names is None:
            return dict(self._rrsets)
        wanted = set(names)
        return {key: rrset for key, rrset in self._rrsets.items() if key[0] in wanted}

    def apply(self, *, replace: Sequence[RRset] = (), delete: Sequence[RRsetKey] = ()) -> None:
        # The services write the rows; keep this view consistent with them.
        for key in delete:
            self._rrsets.pop(key, None)
        for rrset in replace:
            self._rrsets[rrset.key] = rrset


def export_zone_file(zone: ZoneAccess, rrsets: Iterable[RRset], *, serial: int) -> str:
    """A BIND zone file: SOA and NS at the apex, then every record set, sorted, with absolute names."""
    origin = zone.name
    lines = [
        f"; zone {origin} exported by Slipway",
        f"$ORIGIN {origin}",
        f"$TTL {zone.default_ttl}",
        f"@ IN SOA {NAMESERVER} hostmaster.{origin} {serial} {SOA_TIMERS}",
        f"@ IN NS {NAMESERVER}",
    ]
    for rrset in sorted(rrsets, key=lambda r: (tuple(reversed(r.name.split("."))), r.type)):
        lines += [f"{rrset.name} {rrset.ttl} IN {rrset.type} {content}" for content in sorted(rrset.contents)]
    return "\n".join(lines) + "\n"
