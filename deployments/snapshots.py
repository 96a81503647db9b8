"""Reading an application's deploy spec as the database has it now (a selector: reads only, no I/O).

Releases call :func:`spec_capture` once, when they are filed, and freeze the
result; the steps after that read the frozen spec, never this.
"""
from . import manifests
from .models import Application, Environment, MiddlewareInstance
from .specs import DeploySpec, MiddlewareSpec, UsedInstance, spec_build


def spec_capture(
    *, application_id: int, environment_id: int, hostname: str | None, base_image_digest: str = ""
) -> DeploySpec:
    """Every input of the application in the environment that reaches the cluster, read afresh.

    ``hostname`` (the exposed application's DNS name) and ``base_image_digest``
    (what the base image's reference points to) come from the DNS app and the
    registry: the caller resolves them.
    """
    application = Application.objects.select_related("project", "base_image").get(id=application_id)
    environment = Environment.objects.select_related("cluster").get(id=environment_id)
    instance = MiddlewareInstance.objects.filter(application=application).first()
    uses = [
        UsedInstance(name=used.application.name, port=used.application.port)
        for used in application.uses_middleware.select_related("application")
    ]
    return spec_build(
        application, environment, namespace=manifests.namespace_name(application, environment),
        cluster=environment.cluster, hostname=hostname,
        allowed_callers=list(application.allowed_callers.values_list("name", flat=True)), uses=uses,
        middleware=MiddlewareSpec(template=instance.template, variables=dict(instance.variables))
        if instance else None,
        base_image_digest=base_image_digest,
    )
