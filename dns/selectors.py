"""Reads of DNS data and who may see them.

Zones are platform reference data: every signed-in user reads them. Records
follow their application: members of its project see them; platform admins
and finance see all, including records that belong to no known application.
"""
from django.db.models import QuerySet
from django.utils import timezone

from deployments.models import Application, Environment
from deployments.selectors import User, project_roles, user_reads_all_projects

from . import naming
from .models import EnvironmentZone, Record, Zone
from .providers import zone_access
from .providers.local import export_zone_file


def zone_list() -> QuerySet[Zone]:
    return Zone.objects.prefetch_related("environments__environment")


def record_list(*, user: User) -> QuerySet[Record]:
    records = Record.objects.select_related("zone", "application__project", "environment")
    if user_reads_all_projects(user):
        return records
    return records.filter(application__project_id__in=project_roles(user).keys())


def zone_file(*, zone: Zone) -> str:
    """The zone as Slipway's records describe it, as a BIND zone file (the local provider's export)."""
    records = zone.records.order_by("name", "type")
    # Deleted records leave no timestamp behind, so the serial is the export time: it only grows.
    serial = int(timezone.now().timestamp())
    return export_zone_file(zone_access(zone), [record.rrset for record in records], serial=serial)


def name_collisions(*, environment: Environment, zone: Zone, name_pattern: str) -> dict[str, list[str]]:
    """Names two applications would share if ``environment`` used ``zone`` with ``name_pattern``.

    Every environment attached to the zone counts, since applications of all of
    them publish there: ``{name: ["shop/api in prod", "shop/api in staging"]}``.
    """
    attachments = [
        (attachment.environment, attachment.name_pattern)
        for attachment in EnvironmentZone.objects.filter(zone=zone).exclude(environment=environment)
        .select_related("environment")
    ] + [(environment, name_pattern)]
    names: dict[str, str] = {}
    for application in Application.objects.select_related("project"):
        for attached, pattern in attachments:
            try:
                names[f"{application} in {attached}"] = naming.render_name(
                    pattern, application=application.name, project=application.project.slug,
                    environment=attached.name, zone=zone.name,
                )
            except ValueError:
                continue  # an invalid name is reported when that application is published
    return naming.find_collisions(names)
