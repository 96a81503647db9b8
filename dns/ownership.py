"""Which DNS names belong to Slipway, marked the way ExternalDNS marks them.

Beside every address record (A or CNAME) it manages, Slipway keeps a TXT
record at ``_slipway-owner.<name>`` whose content names the owner:
``"heritage=slipway,application=<project>/<app>,environment=<env>"``. It
lives beside the name rather than at it because a CNAME may not share its name
with any other record. Slipway changes or deletes a name only when that TXT
names the same owner; a name holding anything without it belongs to someone
else, and is left alone. Pure: no database, no network.
"""
from collections.abc import Mapping
from dataclasses import dataclass

from paas_site.errors import PermanentError

from .naming import hostname, ownership_name
from .providers import RRset, RRsetKey

HERITAGE = "slipway"


class NameOwnedElsewhere(PermanentError):
    """The name exists in DNS and is not ours: publishing or deleting it would break someone else."""

    status_code = 409
    code = "dns_name_owned_elsewhere"


@dataclass(frozen=True)
class Owner:
    project: str
    application: str
    environment: str

    def __str__(self) -> str:
        return f"{self.project}/{self.application} in {self.environment}"

    @property
    def txt(self) -> str:
        """The ownership record's content, in presentation format (quoted)."""
        return f'"heritage={HERITAGE},application={self.project}/{self.application},environment={self.environment}"'


def parse_owner(content: str) -> Owner | None:
    """The owner a TXT content names, or None when it is not a Slipway ownership record."""
    text = "".join(part for part in content.split('"') if part.strip()) if '"' in content else content
    fields = dict(item.partition("=")[::2] for item in text.split(","))
    project, _, application = fields.get("application", "").partition("/")
    if fields.get("heritage") != HERITAGE or not (project and application and fields.get("environment")):
        return None
    return Owner(project=project, application=application, environment=fields["environment"])


def ensure_owned(*, name: str, owner: Owner, observed: Mapping[RRsetKey, RRset]) -> None:
    """Raise :class:`NameOwnedElsewhere` unless ``name`` is free in ``observed`` or already ``owner``'s.

    ``observed`` holds (at least) the record sets at ``name`` and at its ownership name.
    """
    marker = observed.get((ownership_name(name), "TXT"))
    at_name = sorted((rrset for (rrset_name, _), rrset in observed.items() if rrset_name == name), key=lambda r: r.type)
    if marker is None:
        if not at_name:
            return
        held = "; ".join(f"{rrset.type} {' '.join(rrset.contents)}" for rrset in at_name)
        reason = f"it holds {held} and has no ownership record {ownership_name(name)} TXT."
    else:
        owners = {parse_owner(content) for content in marker.contents}
        if owners == {owner}:
            return
        named = sorted(str(other) for other in owners if other is not None)
        reason = (
            f"its ownership record says it is published for {', '.join(named)}."
            if named and None not in owners
            else f"its ownership record {ownership_name(name)} TXT holds {' '.join(marker.contents)}."
        )
    raise NameOwnedElsewhere(f"DNS name {hostname(name)} is owned by something else: {reason}")
