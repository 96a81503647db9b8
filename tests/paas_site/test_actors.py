"""An actor is a user or a SystemActor: a bare "system:<x>" string is refused everywhere, never trusted."""
import pytest
from django.db import transaction

from paas_site.actors import WORKER, SystemActor, actor_check, actor_label, actor_user
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory
from tests.workflows.factories import PINNED
from workflows import audit, services
from workflows.models import AuditEvent, Release


def test_system_actor_is_a_named_component():
    assert str(WORKER) == "system:worker" == actor_label(WORKER)
    assert actor_user(WORKER) is None
    assert SystemActor("worker") == WORKER  # frozen value: equal by component
    with pytest.raises(ValueError):
        SystemActor("Not A Name")


@pytest.mark.parametrize("fake", ["system:worker", "user:lead", "", None, 42])
def test_anything_else_is_refused(fake):
    with pytest.raises(TypeError):
        actor_check(fake)


@pytest.mark.django_db
def test_audit_writer_refuses_a_string_actor(project):
    application, environment = ApplicationFactory(project=project), EnvironmentFactory()
    with pytest.raises(TypeError), transaction.atomic():
        audit.application_scaled(actor="system:worker", application=application, environment=environment,
                                 before=1, after=2)
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_audit_names_users_and_components(project, developer):
    application, environment = ApplicationFactory(project=project), EnvironmentFactory()
    with transaction.atomic():
        by_user = audit.application_scaled(actor=developer, application=application, environment=environment,
                                           before=1, after=2)
        by_system = audit.application_scaled(actor=WORKER, application=application, environment=environment,
                                             before=2, after=1)
    assert (by_user.actor, by_user.actor_user_id) == ("user:dev", developer.pk)
    assert (by_system.actor, by_system.actor_user_id) == ("system:worker", None)


@pytest.mark.django_db
@pytest.mark.parametrize("call", [
    lambda app, env, release: services.release_file(
        actor="system:ci", application=app, environment=env, version="1.0", image=PINNED.format(version="1.0")),
    lambda app, env, release: services.application_scale(
        actor="system:worker", application=app, environment=env, replicas=3),
    lambda app, env, release: services.application_decommission(actor="system:worker", application=app,
                                                                environment=env),
    lambda app, env, release: services.release_cancel(release_id=release.id, actor="system:worker"),
    lambda app, env, release: services.release_retry(release_id=release.id, actor="system:worker"),
    lambda app, env, release: services.approval_grant(release_id=release.id, actor="system:policy"),
], ids=["file", "scale", "decommission", "cancel", "retry", "approve"])
def test_services_refuse_a_string_actor(call, project, developer):
    # given a requested release, and a caller that passes a string where an actor belongs
    application, environment = ApplicationFactory(project=project), EnvironmentFactory(required_approvals=1)
    release = services.release_file(actor=developer, application=application, environment=environment,
                                    version="0.9", image=PINNED.format(version="0.9"))
    # when / then: refused before anything is checked, changed or sent to a cluster
    with pytest.raises(TypeError):
        call(application, environment, release)
    assert Release.objects.get(id=release.id).state == "requested"
    assert Release.objects.count() == 1
