"""DNS names of applications: render an environment's pattern, validate, canonical form.

Pure: no database. A name's canonical form is lowercase and absolute, with the
trailing dot (``api.shop.internal.example.``); :func:`hostname` drops the dot
for an Ingress host. Every label is an RFC 1123 label (letters, digits, '-',
at most 63 characters) and a name has at most 253 characters.
"""
import ipaddress
import re
import string
from collections.abc import Mapping

PLACEHOLDERS = ("application", "project", "environment", "zone")
DEFAULT_PATTERN = "{application}.{project}.{zone}"
# Slipway's ownership record of a name lives beside it, at this prefix (see ownership.py).
OWNERSHIP_PREFIX = "_slipway-owner"
MAX_NAME_LENGTH = 253  # presentation form without the trailing dot: 255 octets on the wire
MAX_LABEL_LENGTH = 63
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


def canonical_name(name: str, *, what: str = "DNS name") -> str:
    """``Api.Example.COM`` → ``api.example.com.``; ``ValueError`` saying what is wrong otherwise."""
    text = name.strip().lower()
    bare = text[:-1] if text.endswith(".") else text
    if not bare:
        raise ValueError(f"{what} is empty.")
    if len(bare) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} {bare!r} is {len(bare)} characters long; at most {MAX_NAME_LENGTH} are allowed.")
    for label in bare.split("."):
        if not label:
            raise ValueError(f"{what} {bare!r} has an empty label (two dots in a row, or a leading dot).")
        if len(label) > MAX_LABEL_LENGTH:
            raise ValueError(
                f"{what} {bare!r} has the label {label!r} of {len(label)} characters; at most {MAX_LABEL_LENGTH} are allowed."
            )
        if not _LABEL.match(label):
            raise ValueError(
                f"{what} {bare!r} has the label {label!r}: labels consist of letters, digits and '-', "
                "and start and end with a letter or digit (RFC 1123)."
            )
    return f"{bare}."


def hostname(name: str) -> str:
    """The name without its trailing dot, as an Ingress host or a URL wants it."""
    return name[:-1] if name.endswith(".") else name


def ownership_name(name: str) -> str:
    """Where the ownership TXT record of ``name`` lives: ``_slipway-owner.<name>``."""
    return f"{OWNERSHIP_PREFIX}.{name}"


def validate_pattern(pattern: str) -> None:
    """A pattern uses only the known placeholders, names each application, and stays inside the zone."""
    try:
        fields = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise ValueError(f"name pattern {pattern!r} is malformed: {exc}.") from None
    used = set()
    for _literal, field, spec, conversion in fields:
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conversion:
            known = " ".join(f"{{{name}}}" for name in PLACEHOLDERS)
            raise ValueError(f"name pattern {pattern!r} uses {{{field}}}; only these placeholders are allowed: {known}.")
        used.add(field)
    if "application" not in used:
        raise ValueError(f"name pattern {pattern!r} must contain {{application}}: each application needs its own name.")
    if not pattern.rstrip(".").endswith(".{zone}"):
        raise ValueError(f"name pattern {pattern!r} must end with '.{{zone}}': the name has to lie inside the zone.")


def render_name(pattern: str, *, application: str, project: str, environment: str, zone: str) -> str:
    """The canonical name ``pattern`` gives an application; ``ValueError`` when it is not a valid DNS name."""
    validate_pattern(pattern)
    zone = canonical_name(zone, what="zone name")
    rendered = pattern.rstrip(".").format(
        application=application, project=project, environment=environment, zone=hostname(zone)
    )
    name = canonical_name(rendered)
    limit = MAX_NAME_LENGTH - len(OWNERSHIP_PREFIX) - 1
    if len(hostname(name)) > limit:
        raise ValueError(
            f"DNS name {hostname(name)!r} is {len(hostname(name))} characters long; at most {limit} are allowed, "
            f"leaving room for its ownership record {OWNERSHIP_PREFIX}.<name>."
        )
    return name


def find_collisions(names: Mapping[str, str]) -> dict[str, list[str]]:
    """Names claimed by more than one owner: ``{owner: name}`` → ``{name: [owners…]}`` (sorted)."""
    claimed: dict[str, list[str]] = {}
    for owner, name in names.items():
        claimed.setdefault(name, []).append(owner)
    return {name: sorted(owners) for name, owners in sorted(claimed.items()) if len(owners) > 1}


def address_record(ingress_address: str) -> tuple[str, str]:
    """``(type, content)`` that points a name at a cluster's ingress: A for an IPv4 address, CNAME for a hostname."""
    address = ingress_address.strip()
    if not address:
        raise ValueError("there is no ingress address to point the name at; set the cluster's ingress address.")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "CNAME", canonical_name(address, what="ingress hostname")
    if ip.version == 6:
        raise ValueError(f"ingress address {address} is IPv6; AAAA records are not supported yet.")
    return "A", str(ip)

