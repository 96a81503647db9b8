"""What a release freezes when it is filed, so that an approval covers everything that will run.

Filing captures the application's deploy spec (``deployments.snapshots``),
resolves a prebuilt image's tag and the base image's tag to digests through the
registry, and hashes a package URL given without a sha256: approvers approve
a digest, a spec and bytes, never a tag or a row that may change. A registry
or package host that cannot be reached refuses the filing with a 503 ("try
again"); a release is never filed for a bare tag. Nothing here writes: the
filing services store what these functions return.
"""
from typing import Any

from deployments import packages, registry
from deployments import services as deployments
from deployments.models import Application, Environment, Revision
from deployments.snapshots import spec_capture
from deployments.specs import DeploySpec, spec_differences
from dns import services as dns
from paas_site.errors import (
    ApplicationError,
    Conflict,
    PermanentError,
    ServiceUnavailable,
    TransientError,
    invalid_fields,
)

from ..models import Release


def base_image_pin(application: Application) -> tuple[str, str]:
    """``(reference, digest)`` of a built application's base image now (empty for a prebuilt one).

    Resolved before the filing transaction: no lock is held while the registry answers.
    """
    if not application.base_image_id:
        return "", ""
    base = application.base_image
    return base.image, digest_resolve(base.image, field="base_image", what=f"base image {base.name}")


def snapshot_capture(
    *, application: Application, environment: Environment, base_image: tuple[str, str]
) -> dict[str, Any]:
    """The snapshot of a new release: the deploy spec as the database has it now, with the base image pinned.

    Call inside the filing transaction, under the lane lock; ``base_image`` is
    what :func:`base_image_pin` resolved just before.
    """
    reference, digest = base_image
    spec = _spec_now(application, environment, base_image_digest=digest)
    if (spec.base_image.image if spec.base_image else "") != reference:
        raise Conflict(f"The base image of {application.name} changed while the release was being filed; "
                       "file it again.", code="application_changed")
    return {"spec": spec.to_json()}


def snapshot_of_revision(revision: Revision) -> dict[str, Any]:
    """The snapshot of a rollback release: the spec of the revision it restores, and which manifests those are.

    A revision recorded before specs were kept restores its manifests all the
    same; its snapshot then carries the spec its rows give now, for the steps
    that read one (verify's deadline and namespace).
    """
    restores = {"revision": revision.id, "number": revision.number, "manifests_digest": revision.manifests_digest,
                "image": revision.image, "config_hash": revision.config_hash}
    spec = revision.spec or deployments.revision_spec(revision).to_json()
    return {"spec": spec, "restores": restores}


def digest_resolve(image: str, *, field: str = "image", what: str = "") -> str:
    """The digest ``image`` points to now; a 503 when the registry cannot be reached, a 400 naming ``field``."""
    what = what or image
    try:
        return registry.resolve_digest(image)
    except TransientError as exc:
        raise ServiceUnavailable(
            f"{field}: the registry could not be reached to pin {what} to a digest; try again ({exc.message}).",
            code="registry_unavailable", extra={"fields": {field: ["registry unreachable: try again."]}},
        ) from None
    except PermanentError as exc:
        raise invalid_fields({field: [f"cannot be pinned to a digest: {exc.message}."]}) from None


def package_url_hash(url: str) -> str:
    """Fetch a package URL given without a sha256 and hash it, so approvers approve these bytes."""
    try:
        with packages.package_download(url) as fetched:
            return fetched.sha256
    except TransientError as exc:
        raise ServiceUnavailable(
            f"package_url: could not be fetched to compute its sha256; try again, or send package_sha256 "
            f"({exc.message}).", code="package_unavailable",
            extra={"fields": {"package_url": ["unreachable: try again, or send package_sha256."]}},
        ) from None
    except PermanentError as exc:
        raise invalid_fields({"package_url": [exc.message]}) from None


def release_application_changes(release: Release) -> list[str]:
    """The spec fields in which the application (or its environment) differs now from the release's snapshot.

    Empty for a release without a snapshot, and for a rollback (it restores a
    revision, whatever the application is now).
    """
    if not release.snapshot.get("spec") or release.snapshot.get("restores"):
        return []
    try:
        now = _spec_now(release.application, release.environment, base_image_digest="")
    except ApplicationError:
        return ["hostname"]
    return spec_differences(release.spec, now)


def _spec_now(application: Application, environment: Environment, *, base_image_digest: str) -> DeploySpec:
    hostname = None
    if application.exposed:
        hostname = (dns.dns_hostname(application, environment)
                    or deployments.default_hostname(application, environment))
    return spec_capture(application_id=application.id, environment_id=environment.id, hostname=hostname,
                        base_image_digest=base_image_digest)
