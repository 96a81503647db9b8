"""DNS for the release pipeline: name, check, publish, unpublish and reconcile applications' records.

The pipeline calls ``dns_name_check`` before a deploy touches anything,
``dns_hostname`` for the Ingress host, ``dns_publish`` once the manifests are
applied and ``dns_unpublish`` when the application leaves the environment;
``dns_reconcile`` runs periodically. Each is idempotent.

An application published in an environment has two Record rows: its address
(A or CNAME) and the TXT marking the name as Slipway's (see ``ownership``).
The rows are locked while the provider is called, so two workers never change
the same names at once. A provider failure is written to the rows (status
``error`` and the reason) and committed before it is raised again: the caller
can retry, and users see what went wrong.

``dns_publish`` and ``dns_unpublish`` are lane work: the caller's ``fence`` is
checked immediately before every change sent to the provider (see
``deployments/fencing.py``); a stale claim changes nothing, rows included.
"""
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import transaction

from deployments import changes
from deployments.fencing import Fence, unfenced
from deployments.locks import rows_lock
from deployments.models import Application, Environment
from paas_site.actors import DNS
from paas_site.errors import ApplicationError, Conflict, ExternalError

from . import naming
from .choices import ADDRESS_TYPES, RecordStatus, RecordType
from .models import EnvironmentZone, Record, Zone
from .ownership import NameOwnedElsewhere, Owner, ensure_owned
from .providers import RRset, RRsetKey, provider_for

# What a record says in DNS; a change to any of these is audited (status bookkeeping is not).
DATA_FIELDS = ("zone_id", "name", "type", "content", "ttl", "application_id", "environment_id")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """Where and how one application is published in one environment."""

    zone: Zone
    owner: Owner
    address: RRset
    marker: RRset  # the ownership TXT beside the address

    @property
    def rrsets(self) -> tuple[RRset, RRset]:
        return self.address, self.marker


@dataclass(frozen=True)
class SyncResult:
    replaced: tuple[RRset, ...]
    deleted: tuple[RRsetKey, ...]


# -- what the pipeline calls ----------------------------------------------------------


def dns_hostname(application: Application, environment: Environment) -> str | None:
    """The application's DNS name without the trailing dot (the Ingress host); None when the environment has no zone."""
    attachment = _attachment(environment)
    return naming.hostname(_name(application, environment, attachment)) if attachment else None


def dns_name_check(*, application_id: int, environment_id: int) -> str | None:
    """Check that the application can be published, before a deploy changes anything; its hostname, or None without a zone.

    Raises ``ApplicationError`` for an invalid name or target and a name another
    application holds, ``NameOwnedElsewhere`` (a ``PermanentError``) for a name
    that exists in DNS and is not Slipway's, ``TransientError`` when the provider is down.
    """
    application, environment = _load(application_id, environment_id)
    placement = _placement(application, environment)
    if placement is None:
        return None
    _ensure_unclaimed(placement, application, environment)
    observed = provider_for(placement.zone).rrsets([placement.address.name, placement.marker.name])
    ensure_owned(name=placement.address.name, owner=placement.owner, observed=observed)
    return naming.hostname(placement.address.name)


def dns_publish(*, application_id: int, environment_id: int, fence: Fence = unfenced) -> Record | None:
    """Point the application's name at its cluster's ingress (A or CNAME) and mark it as Slipway's.

    Names published earlier elsewhere (another zone, or none any more) are
    withdrawn. Returns the address record, or None when the environment has no zone.
    """
    application, environment = _load(application_id, environment_id)
    placement = _placement(application, environment)
    record = None
    with transaction.atomic():
        rows = _lock_rows(application, environment)
        if placement is not None:
            _ensure_unclaimed(placement, application, environment)
        target_zone_id = placement.zone.pk if placement else None
        failure = _withdraw([row for row in rows if row.zone_id != target_zone_id], _owner(application, environment),
                            fence)
        if placement is not None and failure is None:
            current = [row for row in rows if row.zone_id == target_zone_id]
            try:
                _sync(placement.zone, placement.owner, current, desired=placement.rrsets, fence=fence)
            except ExternalError as exc:
                failure = exc
            record = _store_published(placement, application, environment, current, failure)
    if failure is not None:
        raise failure
    return record


def dns_unpublish(*, application_id: int, environment_id: int, fence: Fence = unfenced) -> None:
    """Delete the application's names from DNS and forget its records.

    Only names Slipway owns are deleted: one that something else holds now keeps
    what it holds (with a warning in the log), as there is nothing of ours left to remove.
    """
    application, environment = _load(application_id, environment_id)
    with transaction.atomic():
        rows = _lock_rows(application, environment)
        failure = _withdraw(rows, _owner(application, environment), fence)
    if failure is not None:
        raise failure


def dns_reconcile() -> dict[str, int]:
    """Compare every record Slipway manages with its provider; repair drift or mark the record ``error``.

    Returns counts of records: ``checked``, ``in_sync``, ``repaired``, ``errors``
    and ``skipped`` (locked by a publish in progress).
    """
    counts = Counter({"checked": 0, "in_sync": 0, "repaired": 0, "errors": 0, "skipped": 0})
    groups: dict[int, set[tuple[int, int]]] = {}
    managed = Record.objects.filter(application__isnull=False, environment__isnull=False).order_by()
    for zone_id, application_id, environment_id in managed.values_list("zone_id", "application_id", "environment_id"):
        groups.setdefault(zone_id, set()).add((application_id, environment_id))
    for zone in Zone.objects.filter(id__in=groups):
        try:
            observed, failure = provider_for(zone).rrsets(), None
        except ExternalError as exc:
            observed, failure = {}, exc
            logger.warning("DNS reconcile cannot read zone %s: %s", zone.name, exc.message)
        for application_id, environment_id in sorted(groups[zone.id]):
            counts.update(_reconcile_group(zone, application_id, environment_id, observed, failure))
    return dict(counts)


# -- the steps ---------------------------------------------------------------------------


def _sync(
    zone: Zone, owner: Owner, rows: Sequence[Record], *, desired: Sequence[RRset],
    observed: dict[RRsetKey, RRset] | None = None, fence: Fence = unfenced,
) -> SyncResult:
    """Make the zone hold ``desired`` for ``owner`` instead of what ``rows`` published, in one provider change.

    A name to publish must be free or ``owner``'s, else ``NameOwnedElsewhere``.
    A name only to withdraw that is not ``owner``'s holds nothing of ours: it is
    left alone. Only address and ownership records at our names are deleted.
    """
    publishing = {rrset.name for rrset in desired if rrset.type in ADDRESS_TYPES}
    candidates = sorted(publishing | {_owned_name(row) for row in rows})
    provider = provider_for(zone)
    if observed is None:
        observed = provider.rrsets([*candidates, *(naming.ownership_name(name) for name in candidates)])
    names = set()
    for name in candidates:
        try:
            ensure_owned(name=name, owner=owner, observed=observed)
        except NameOwnedElsewhere as exc:
            if name in publishing:
                raise
            logger.warning("Not deleting %s from zone %s: %s", name, zone.name, exc.message)
            continue
        names.add(name)
    markers = {naming.ownership_name(name) for name in names}
    wanted = {rrset.key for rrset in desired}
    replace = tuple(rrset for rrset in desired if observed.get(rrset.key) != rrset)
    delete = tuple(
        key for key in observed
        if key not in wanted and ((key[0] in names and key[1] in ADDRESS_TYPES) or (key[0] in markers and key[1] == "TXT"))
    )
    if replace or delete:
        fence(f"change DNS zone {zone.name}")
        provider.apply(replace=replace, delete=delete)
    return SyncResult(replaced=replace, deleted=delete)


def _withdraw(rows: Sequence[Record], owner: Owner, fence: Fence = unfenced) -> ExternalError | None:
    """Delete ``rows``' names from DNS and the rows with them; rows whose zone fails are marked ``error``."""
    failure = None
    for zone, zone_rows in _by_zone(rows):
        try:
            _sync(zone, owner, zone_rows, desired=(), fence=fence)
        except ExternalError as exc:
            failure = failure or exc
            for row in zone_rows:
                _save(row, failure=exc)
            continue
        for row in zone_rows:
            changes.recorder().object_deleted(actor=DNS, obj=row, before=changes.recorder().snapshot(row))
            row.delete()
    return failure


def _store_published(
    placement: Placement, application: Application, environment: Environment, rows: Sequence[Record],
    failure: ExternalError | None,
) -> Record:
    """One address row and one ownership row, updated in place; extras (there should be none) go."""
    stored: list[Record] = []
    for rrset, role_rows in (
        (placement.address, [row for row in rows if row.is_address]),
        (placement.marker, [row for row in rows if row.type == RecordType.TXT]),
    ):
        row = role_rows[0] if role_rows else Record(application=application, environment=environment)
        for extra in role_rows[1:]:
            if failure is None:
                changes.recorder().object_deleted(actor=DNS, obj=extra, before=changes.recorder().snapshot(extra))
                extra.delete()
            else:
                _save(extra, failure=failure)
        stored.append(_save(row, zone=placement.zone, rrset=rrset, failure=failure))
    return stored[0]


def _reconcile_group(
    zone: Zone, application_id: int, environment_id: int, observed: dict[RRsetKey, RRset], failure: ExternalError | None
) -> Counter:
    counts: Counter = Counter()
    with transaction.atomic():
        selected = Record.objects.filter(zone=zone, application_id=application_id, environment_id=environment_id)
        rows = rows_lock(selected.select_related("application__project", "environment"), skip_locked=True)
        counts["skipped"] = selected.count() - len(rows)
        if not rows:
            return counts
        result = SyncResult((), ())
        if failure is None:
            owner = _owner(rows[0].application, rows[0].environment)
            try:
                result = _sync(zone, owner, rows, desired=[row.rrset for row in rows], observed=observed)
            except ExternalError as exc:
                failure = exc
        repaired = {rrset.key for rrset in result.replaced}
        for row in rows:
            counts["checked"] += 1
            if failure is not None:
                counts["errors"] += 1
                _save(row, failure=failure)
            elif row.rrset.key in repaired:
                counts["repaired"] += 1
                # The audit's "before" is what DNS held, so the trail shows what was repaired.
                held = observed.get(row.rrset.key)
                before = {**changes.recorder().snapshot(row), "content": " ".join(held.contents) if held else None,
                          "ttl": held.ttl if held else None}
                _save(row, failure=None)
                changes.recorder().object_changed(actor=DNS, obj=row, before=before)
                logger.info("DNS reconcile repaired %s %s in zone %s", row.name, row.type, zone.name)
            else:
                counts["in_sync"] += 1
                _save(row, failure=None)
    if failure is not None:
        logger.warning("DNS records of %s/%s in zone %s are in error: %s", application_id, environment_id, zone.name,
                       failure.message)
    return counts


# -- helpers -----------------------------------------------------------------------------------


def _save(row: Record, *, zone: Zone | None = None, rrset: RRset | None = None, failure: ExternalError | None) -> Record:
    """Write what ``row`` should say and how its sync went; audit changes to its DNS data, save nothing unchanged."""
    creating = row.pk is None
    before = None if creating else changes.recorder().snapshot(row)
    old_data, old_state = _data(row), (row.status, row.last_error)
    if zone is not None:
        row.zone = zone
    if rrset is not None:
        row.name, row.type, row.ttl, row.content = rrset.name, rrset.type, rrset.ttl, rrset.contents[0]
    row.status = RecordStatus.ERROR if failure else RecordStatus.SYNCED
    row.last_error = failure.message if failure else ""
    if not creating and _data(row) == old_data and (row.status, row.last_error) == old_state:
        return row
    row.save()
    if creating:
        changes.recorder().object_created(actor=DNS, obj=row)
    elif _data(row) != old_data:
        changes.recorder().object_changed(actor=DNS, obj=row, before=before)
    return row


def _data(row: Record) -> tuple:
    return tuple(getattr(row, field) for field in DATA_FIELDS)


def _load(application_id: int, environment_id: int) -> tuple[Application, Environment]:
    application = Application.objects.select_related("project").get(id=application_id)
    environment = Environment.objects.select_related("cluster").get(id=environment_id)
    return application, environment


def _attachment(environment: Environment) -> EnvironmentZone | None:
    return EnvironmentZone.objects.select_related("zone").filter(environment=environment).first()


def _owner(application: Application, environment: Environment) -> Owner:
    return Owner(project=application.project.slug, application=application.name, environment=environment.name)


def _name(application: Application, environment: Environment, attachment: EnvironmentZone) -> str:
    try:
        return naming.render_name(
            attachment.name_pattern, application=application.name, project=application.project.slug,
            environment=environment.name, zone=attachment.zone.name,
        )
    except ValueError as exc:
        raise ApplicationError(
            f"{application} has no valid DNS name in {environment}: {exc}", code="invalid_dns_name"
        ) from None


def _placement(application: Application, environment: Environment) -> Placement | None:
    attachment = _attachment(environment)
    if attachment is None:
        return None
    name = _name(application, environment, attachment)
    cluster = environment.cluster
    try:
        type_, content = naming.address_record(cluster.ingress_address)
    except ValueError as exc:
        raise ApplicationError(
            f"Cannot publish {naming.hostname(name)} in DNS: cluster {cluster.name}: {exc}", code="invalid_dns_target"
        ) from None
    owner, ttl = _owner(application, environment), attachment.zone.default_ttl
    return Placement(
        zone=attachment.zone, owner=owner,
        address=RRset(name=name, type=type_, ttl=ttl, contents=(content,)),
        marker=RRset(name=naming.ownership_name(name), type=RecordType.TXT.value, ttl=ttl, contents=(owner.txt,)),
    )


def _ensure_unclaimed(placement: Placement, application: Application, environment: Environment) -> None:
    """Two applications (or one in two environments sharing a zone) never get the same name."""
    taken = (
        Record.objects.filter(zone=placement.zone, name__in=[placement.address.name, placement.marker.name])
        .exclude(application=application, environment=environment)
        .select_related("application__project", "environment")
        .first()
    )
    if taken is None:
        return
    host = naming.hostname(placement.address.name)
    holder = (
        f"{taken.application} in {taken.environment}" if taken.application and taken.environment
        else "a record that belongs to no application Slipway knows"
    )
    raise Conflict(
        f"DNS name {host} is already taken by {holder}; give one of them another name "
        f"(the environment's name pattern, or the application's name).",
        code="dns_name_taken", extra={"name": host},
    )


def _lock_rows(application: Application, environment: Environment) -> list[Record]:
    return rows_lock(Record.objects.select_related("zone").filter(application=application, environment=environment))


def _by_zone(rows: Iterable[Record]) -> list[tuple[Zone, list[Record]]]:
    zones: dict[int, tuple[Zone, list[Record]]] = {}
    for row in rows:
        zones.setdefault(row.zone_id, (row.zone, []))[1].append(row)
    return list(zones.values())


def _owned_name(row: Record) -> str:
    """The name a row is about: its own, or for an ownership record the name it marks."""
    return row.name.removeprefix(f"{naming.OWNERSHIP_PREFIX}.") if row.type == RecordType.TXT else row.name
