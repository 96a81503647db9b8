"""One-click middleware: create an instance from the catalog and release it like any application."""
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from deployments import middleware
from deployments.images import parse_image_reference
from deployments.models import Application, BaseImage, Environment, MiddlewareInstance, Project
from deployments.permissions import Action, project_require
from paas_site.actors import Actor
from paas_site.errors import ApplicationError, invalid_fields

from .. import audit
from ..locks import lane_lock
from ..models import Release
from .releases import release_file

NAME_TAKEN = "already names an application of this project."


def middleware_instantiate(
    *, actor: Actor, project: Project, environment: Environment, template: str, name: str, variables: Any = None,
    description: str = "",
) -> tuple[MiddlewareInstance, Release]:
    """Create an instance (its application and settings) and file its first release to ``environment``.

    The release goes through the environment's approval policy, freeze windows
    and audit trail like any other; the instance's secrets are generated when
    it is first deployed there.
    """
    project_require(actor, Action.MANAGE_MIDDLEWARE, project)
    spec = middleware.TEMPLATES.get(template)
    if spec is None:
        raise invalid_fields({"template": [f"unknown template; the catalog has: {', '.join(middleware.TEMPLATES)}."]})
    values = middleware.variables_validate(spec, variables)
    base_image = BaseImage.objects.filter(name=spec.base_image).first()
    if base_image is None:
        raise ApplicationError(f"The platform's catalog has no base image {spec.base_image!r} for {spec.name}; "
                               "ask a platform admin to add it.", code="catalog_incomplete")
    application = Application(
        project=project, name=name, description=description or f"{spec.display_name} instance",
        image=parse_image_reference(base_image.image).name, port=spec.port, health_path=spec.health_path,
        **spec.resources(values),
    )
    _check_application(application)
    try:
        with transaction.atomic():
            application.save()
            instance = MiddlewareInstance.objects.create(application=application, template=spec.name, variables=values)
            audit.object_created(actor=actor, obj=application)
            audit.object_created(actor=actor, obj=instance)
            release = _release_file(actor=actor, instance=instance, environment=environment)
    except IntegrityError:  # the same name, created a moment ago
        raise invalid_fields({"name": [NAME_TAKEN]}) from None
    return instance, release


def middleware_release(
    *, actor: Actor, instance: MiddlewareInstance, environment: Environment, variables: Any = None,
) -> Release:
    """Release an instance to an environment, with changed variables if given (the rest keep their values)."""
    project_require(actor, Action.MANAGE_MIDDLEWARE, instance.application.project)
    values = middleware.variables_validate(instance.spec, variables, current=instance.variables)
    with transaction.atomic():
        application = lane_lock(instance.application_id)
        if values != instance.variables:
            before = [audit.snapshot(application), audit.snapshot(instance)]
            for field, value in instance.spec.resources(values).items():
                setattr(application, field, value)
            _check_application(application)
            application.save()
            instance.variables = values
            instance.save(update_fields=["variables"])
            audit.object_changed(actor=actor, obj=application, before=before[0])
            audit.object_changed(actor=actor, obj=instance, before=before[1])
        instance.application = application
        return _release_file(actor=actor, instance=instance, environment=environment)


def _release_file(*, actor: Actor, instance: MiddlewareInstance, environment: Environment) -> Release:
    spec, values = instance.spec, instance.variables
    return release_file(
        actor=actor, application=instance.application, environment=environment, version=values["version"],
        image=spec.image(instance.application.image, values), config=spec.config(values), via="middleware",
        description=f"{spec.display_name} {values['version']}: " + ", ".join(f"{k}={v}" for k, v in values.items()),
    )


def _check_application(application: Application) -> None:
    """The model's own rules, as a 400 naming the field (the name is the only one a user chose)."""
    try:
        application.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise invalid_fields(exc.message_dict) from None
    taken = Application.objects.filter(project=application.project_id, name=application.name)
    if taken.exclude(id=application.id).exists():
        raise invalid_fields({"name": [NAME_TAKEN]})
