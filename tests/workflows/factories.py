from deployments.models import Application, Environment
from workflows import services
from workflows.models import Release

PINNED = "registry.example.com/shop/api:{version}@sha256:" + "c" * 64


def file_release(*, actor, application: Application, environment: Environment, version: str = "1.0", **fields) -> Release:
    """File through the service, as users do; the image is digest-pinned so no registry is needed."""
    fields.setdefault("image", PINNED.format(version=version))
    return services.release_file(actor=actor, application=application, environment=environment, version=version, **fields)
