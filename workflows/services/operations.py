"""Operations on running applications that the audit trail records."""
from django.db import transaction

from deployments import services as deployments
from deployments.models import Application, Environment
from deployments.selectors import APPLICATION_EDITORS, project_require_role

from .. import audit
from ..audit import Actor


def application_scale(*, application: Application, environment: Environment, replicas: int, actor: Actor) -> int:
    """Scale a running application (within its autoscaling bounds) and audit it; returns the old count."""
    if not isinstance(actor, str):
        project_require_role(user=actor, project=application.project, roles=APPLICATION_EDITORS, action="scale applications")
    before = deployments.deployment_scale(application_id=application.id, environment_id=environment.id, replicas=replicas)
    with transaction.atomic():
        audit.application_scaled(actor=actor, application=application, environment=environment, before=before, after=replicas)
    return before
