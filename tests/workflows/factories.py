import time
from datetime import timedelta

from django.utils import timezone

from deployments.models import Application, Environment
from workflows import services
from workflows.choices import FINAL
from workflows.models import CiToken, Release

PINNED = "registry.example.com/shop/api:{version}@sha256:" + "c" * 64


def file_release(*, actor, application: Application, environment: Environment, version: str = "1.0", **fields) -> Release:
    """File through the service, as users do; the image is digest-pinned so no registry is needed."""
    fields.setdefault("image", PINNED.format(version=version))
    return services.release_file(actor=actor, application=application, environment=environment, version=version, **fields)


def wait_final(release: Release, timeout: float = 30) -> Release:
    """Wait for the worker to finish a release (any final state)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        release.refresh_from_db()
        if release.state in FINAL:
            return release
        time.sleep(0.1)
    raise AssertionError(f"release #{release.id} still {release.state} after {timeout}s: {list(release.steps.values())}")


def ci_token_row(*, project, owner, token: str = "ci-" + "x" * 40, expires_in: timedelta = timedelta(days=1),
                 **fields) -> str:
    """A CI token row owned by ``owner`` (tests that need no maintainer to create it); returns the token."""
    CiToken.objects.create(project=project, name=fields.pop("name", "jenkins"), owner=owner,
                           token_hash=CiToken.hash_of(token), prefix=token[:8],
                           expires_at=timezone.now() + expires_in, **fields)
    return token
