"""Operations on running applications that the audit trail records."""
from django.db import transaction

from deployments import services as deployments
from deployments.models import Application, Environment
from deployments.permissions import Action, project_require
from dns import services as dns
from paas_site.errors import Conflict

from .. import audit
from ..audit import Actor
from ..choices import IN_FLIGHT
from ..models import Release
from .pipeline import lane_lock


def application_scale(*, application: Application, environment: Environment, replicas: int, actor: Actor) -> int:
    """Scale a running application (within its autoscaling bounds) and audit it; returns the old count."""
    project_require(actor, Action.SCALE, application.project)
    before = deployments.deployment_scale(application_id=application.id, environment_id=environment.id, replicas=replicas)
    with transaction.atomic():
        audit.application_scaled(actor=actor, application=application, environment=environment, before=before, after=replicas)
    return before


def application_decommission(*, application: Application, environment: Environment, actor: Actor) -> None:
    """Remove a running application from an environment: its objects and its DNS name; audited."""
    project_require(actor, Action.DECOMMISSION, application.project)
    with transaction.atomic():
        lane_lock(application.id)
        busy = Release.objects.filter(application=application, environment=environment, state__in=IN_FLIGHT).first()
        if busy:
            raise Conflict(f"Release #{busy.id} is {busy.state} in {environment.name}; decommission after it finishes.",
                           code="lane_busy")
    live = deployments.revision_live(application=application, environment=environment)
    deployments.application_decommission(application_id=application.id, environment_id=environment.id)
    dns.dns_unpublish(application_id=application.id, environment_id=environment.id)
    with transaction.atomic():
        audit.application_decommissioned(
            actor=actor, application=application, environment=environment, revision=live.number if live else None
        )
