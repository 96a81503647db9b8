"""DNS providers behind one small interface.

A provider reads and changes the record sets (RRsets) of one zone. Names are
canonical (lowercase, trailing dot) and contents are in presentation format, as
in a zone file (a TXT content carries its quotes). Providers talk to the
outside only: they never touch the ORM, and they raise ``TransientError``
(retry later) or ``PermanentError`` (retrying cannot help).
"""
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..models import Zone

RRsetKey = tuple[str, str]  # (name, type)


@dataclass(frozen=True)
class RRset:
    name: str
    type: str
    ttl: int
    contents: tuple[str, ...]

    @property
    def key(self) -> RRsetKey:
        return self.name, self.type


@dataclass(frozen=True)
class ZoneAccess:
    """Everything a provider needs to reach one zone; built from a Zone row by :func:`provider_for`."""

    name: str
    default_ttl: int = 300
    api_url: str = ""
    server_id: str = "localhost"
    api_key: str = field(default="", repr=False)  # never printed


class Provider(Protocol):
    zone: ZoneAccess

    def rrsets(self, names: Iterable[str] | None = None) -> dict[RRsetKey, RRset]:
        """The zone's record sets, all of them or those at ``names``."""
        ...

    def apply(self, *, replace: Sequence[RRset] = (), delete: Sequence[RRsetKey] = ()) -> None:
        """Replace and delete record sets in one change; deleting what is absent is no error."""
        ...


def zone_access(zone: "Zone") -> ZoneAccess:
    return ZoneAccess(
        name=zone.name, default_ttl=zone.default_ttl, api_url=zone.api_url, server_id=zone.server_id, api_key=zone.api_key
    )


def provider_for(zone: "Zone") -> Provider:
    """The provider of ``zone``. A local zone holds exactly what Slipway's Record rows say."""
    from ..choices import ZoneProvider
    from .local import LocalProvider
    from .powerdns import PowerDNSProvider

    if zone.provider == ZoneProvider.POWERDNS:
        return PowerDNSProvider(zone_access(zone))
    return LocalProvider(zone_access(zone), [record.rrset for record in zone.records.all()])
