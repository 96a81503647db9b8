"""Existing releases and revisions get a snapshot built from today's rows.

Explicitly: the spec of a release filed before snapshots existed is what its
application and environment are when this migration runs (marked
``"captured": "migration"``), with no base image digest (a build of such a
release uses the base image's reference as it is then). A rollback release
also records the revision it restores. Revisions get the same spec, so
verifying and rolling back read it instead of the live rows.

Approvals given before this migration were bound to the old fingerprint
(artifact + config only); they no longer count for releases still awaiting a
decision, whose approvers must sign off the full snapshot again.
"""
from django.conf import settings
from django.db import migrations
from django.utils import timezone

from deployments.specs import MiddlewareSpec, UsedInstance, spec_build
from dns import naming


def _hostname(apps, application, environment):
    if not application.exposed:
        return None
    attachment = apps.get_model("dns", "EnvironmentZone").objects.filter(environment_id=environment.id).first()
    if attachment is not None:
        try:
            return naming.hostname(naming.render_name(
                attachment.name_pattern, application=application.name, project=application.project.slug,
                environment=environment.name, zone=attachment.zone.name,
            ))
        except ValueError:
            return None
    return f"{application.name}.{application.project.slug}.{environment.name}.{settings.SLIPWAY_APPS_DOMAIN}"


def _spec(apps, application, environment, cache):
    key = (application.id, environment.id)
    if key not in cache:
        instance = apps.get_model("deployments", "MiddlewareInstance").objects.filter(application=application).first()
        cache[key] = spec_build(
            application, environment,
            namespace=environment.namespace_pattern.format(project=application.project.slug,
                                                           environment=environment.name),
            cluster=environment.cluster, hostname=_hostname(apps, application, environment),
            allowed_callers=list(application.allowed_callers.values_list("name", flat=True)),
            uses=[UsedInstance(name=used.application.name, port=used.application.port)
                  for used in application.uses_middleware.select_related("application")],
            middleware=MiddlewareSpec(template=instance.template, variables=dict(instance.variables))
            if instance else None,
        ).to_json()
    return cache[key]


def backfill(apps, schema_editor):
    Release = apps.get_model("workflows", "Release")
    Revision = apps.get_model("deployments", "Revision")
    cache = {}
    related = ("application__project", "application__base_image", "environment__cluster")
    for revision in Revision.objects.filter(spec__isnull=True).select_related(*related).iterator():
        Revision.objects.filter(id=revision.id).update(spec=_spec(apps, revision.application, revision.environment,
                                                                  cache))
    backfilled = []
    for release in Release.objects.filter(snapshot={}).select_related(*related, "rollback_to").iterator():
        backfilled.append(release.id)
        snapshot = {"spec": _spec(apps, release.application, release.environment, cache), "captured": "migration"}
        target = release.rollback_to
        if target is not None:
            snapshot["restores"] = {"revision": target.id, "number": target.number,
                                    "manifests_digest": target.manifests_digest, "image": target.image,
                                    "config_hash": target.config_hash}
        Release.objects.filter(id=release.id).update(snapshot=snapshot)
    # Approvals of those still awaiting a decision were given for the old, narrower fingerprint: void them, so no
    # counter shows them as given and the approvers sign off the full snapshot again.
    apps.get_model("workflows", "Approval").objects.filter(
        release_id__in=backfilled, release__state="requested", voided_at__isnull=True
    ).update(voided_at=timezone.now())


class Migration(migrations.Migration):

    dependencies = [
        ("workflows", "0009_release_snapshot"),
        ("deployments", "0005_revision_spec"),
        ("dns", "0001_initial"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
