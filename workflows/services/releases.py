"""Filing releases and deciding on them: request, change, approve, reject, cancel, retry, roll back."""
from datetime import datetime
from typing import Any, NamedTuple, NoReturn

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from billing.services import release_cost_impact
from deployments.manifests import ReleaseConfig
from deployments.models import Application, Environment, Package
from deployments.packages import SHA256, package_url_check
from deployments.permissions import Action, project_require
from deployments.services import build_repository, package_upload
from deployments.specs import DeploySpec
from deployments.validators import validate_image_reference, validate_image_registry
from paas_site.actors import POLICY, actor_user
from paas_site.correlation import current_correlation_id
from paas_site.errors import ApplicationError, Conflict, invalid_fields

from .. import audit
from ..audit import Actor
from ..choices import CANCELLABLE, Decision, ReleaseState, WebhookEvent
from ..configs import config_normalize
from ..locks import lane_lock, release_lock
from ..models import Approval, Release
from ..permissions import release_may, release_require
from ..planner import approvals_missing
from ..selectors import release_of_revision
from . import notifications, snapshots
from .pipeline import lane_advance_on_commit


def release_file(
    *, actor: Actor, application: Application, environment: Environment, version: str, image: str = "",
    package: Package | None = None, package_url: str = "", package_sha256: str = "", commit: str = "",
    config: Any = None, description: str = "", scheduled_at: datetime | None = None, via: str = "api",
) -> Release:
    """File a release; with a policy of zero approvals it is approved (and queued) at once.

    A prebuilt application's release names its image (default: the application's repository:version); a
    release of an application with a base image names its package (an upload or an allow-listed URL).
    """
    project_require(actor, Action.FILE_RELEASE, application.project)
    if not application.base_image_id:
        image = image or (f"{application.image}:{version}" if application.image else "")
    artifact = _artifact_check(application, Artifact(image, package, package_url, package_sha256))
    config = config_normalize(config)
    artifact, image_digest = _artifact_pin(artifact)
    base_image = snapshots.base_image_pin(application)
    with transaction.atomic():
        lane_lock(application.id)
        snapshot = snapshots.snapshot_capture(application=application, environment=environment,
                                              base_image=base_image)
        release = Release.objects.create(
            application=application, environment=environment, requested_by=actor_user(actor),
            requested_via=via, version=version, image=artifact.image, image_digest=image_digest,
            package=artifact.package, package_url=artifact.package_url, package_sha256=artifact.package_sha256,
            commit=commit, config=config, config_hash=ReleaseConfig(env=config["env"], files=config["files"]).hash(),
            snapshot=snapshot, description=description, scheduled_at=scheduled_at,
            correlation_id=current_correlation_id.get(),
            cost_impact=release_cost_impact(application=application, environment=environment,
                                            spec=DeploySpec.from_json(snapshot["spec"])),
        )
        audit.release_requested(actor=actor, release=release)
        if environment.required_approvals == 0:
            _approve(release, actor=POLICY, message="approved by policy: no approvals required")
        else:
            notifications.release_notify(release=release, event=WebhookEvent.AWAITING_APPROVAL)
    return release


def release_file_with_upload(*, actor: Actor, application: Application, upload: UploadedFile, **release: Any) -> Release:
    """Store an uploaded package and file the release that builds it: both or neither.

    The package row rolls back with a refused release, but its file is not in the
    database: it is deleted here, so a refused release leaves no orphan upload.
    """
    package = None
    try:
        with transaction.atomic():
            package = package_upload(project=application.project, file=upload, actor=actor)
            return release_file(actor=actor, application=application, package=package, **release)
    except BaseException:
        if package is not None:
            package.file.delete(save=False)
        raise


def release_change(
    *, release_id: int, actor: Actor, version: str | None = None, image: str | None = None,
    package: Package | None = None, package_url: str | None = None, package_sha256: str | None = None,
    commit: str | None = None, config: Any = None, description: str | None = None,
    scheduled_at: datetime | None = None,
) -> Release:
    """Edit a release still awaiting approval; earlier approvals are voided.

    A new package replaces the old one (an upload replaces a URL and the reverse).
    """
    with transaction.atomic():
        release = release_lock(release_id)
        release_require(actor, Action.CHANGE_RELEASE, release)
        _require_state(release, [ReleaseState.REQUESTED], "changed")
        before = audit.release_picture(release)
        if version is not None:
            release.version = version
        if any(value is not None for value in (image, package, package_url, package_sha256)):
            artifact, digest = _artifact_pin(_artifact_check(
                release.application, _changed_artifact(release, image, package, package_url, package_sha256)
            ))
            release.image, release.package, release.package_url, release.package_sha256 = artifact
            release.image_digest = digest
        if commit is not None:
            release.commit = commit
        if config is not None:
            normal = config_normalize(config)
            release.config = normal
            release.config_hash = ReleaseConfig(env=normal["env"], files=normal["files"]).hash()
        if description is not None:
            release.description = description
        if scheduled_at is not None:
            release.scheduled_at = scheduled_at
        release.save()
        voided = release.approvals.filter(voided_at__isnull=True).update(voided_at=timezone.now())
        audit.release_changed(actor=actor, release=release, before=before, voided=voided)
        if voided:  # those who decided must decide again
            notifications.release_notify(release=release, event=WebhookEvent.AWAITING_APPROVAL)
    return release


def approval_grant(*, release_id: int, actor: Actor, comment: str = "") -> Release:
    return _decide(release_id=release_id, actor=actor, decision=Decision.APPROVE, comment=comment)


def approval_reject(*, release_id: int, actor: Actor, comment: str = "") -> Release:
    return _decide(release_id=release_id, actor=actor, decision=Decision.REJECT, comment=comment)


def release_cancel(*, release_id: int, actor: Actor) -> Release:
    with transaction.atomic():
        release = release_lock(release_id)
        release_require(actor, Action.CANCEL, release)
        _require_state(release, CANCELLABLE, "cancelled")
        before = release.state
        release.cancel()
        release.save()
        audit.release_transitioned(actor=actor, release=release, from_state=before, message=f"{release} cancelled")
    return release


def release_retry(*, release_id: int, actor: Actor) -> Release:
    """Send a failed release back into its lane, to resume from the step that failed."""
    with transaction.atomic():
        release = release_lock(release_id)
        release_require(actor, Action.RETRY, release)
        _require_state(release, [ReleaseState.FAILED], "retried")
        before, step = release.state, release.failed_step
        release.retry()
        release.save()
        audit.release_transitioned(actor=actor, release=release, from_state=before, message=f"retry from {step}")
        lane_advance_on_commit(release)
    return release


def release_rollback(*, release_id: int, actor: Actor, description: str = "") -> Release:
    """File a new release that re-applies what ran before a succeeded release, under the same policy."""
    original = Release.objects.select_related("application__project", "environment", "revision").get(id=release_id)
    release_require(actor, Action.ROLLBACK, original)
    _require_state(original, [ReleaseState.SUCCEEDED], "rolled back")
    target = original.replaced
    if target is None or not target.is_live:
        raise Conflict(f"Release #{original.id} was the first deploy of {original.application.name} here: "
                       "there is no earlier revision to roll back to.", code="nothing_to_roll_back_to")
    earlier = release_of_revision(target)
    config = earlier.config if earlier else {"env": {}, "files": {}}
    snapshot = snapshots.snapshot_of_revision(target)
    with transaction.atomic():
        lane_lock(original.application_id)
        release = Release.objects.create(
            application=original.application, environment=original.environment,
            requested_by=actor_user(actor), requested_via="rollback",
            version=earlier.version if earlier else f"revision-{target.number}", image=target.image or original.image,
            config=config, config_hash=target.config_hash, rollback_of=original, rollback_to=target,
            snapshot=snapshot,
            description=description or f"Roll back release #{original.id} to revision #{target.number}",
            correlation_id=current_correlation_id.get(),
            cost_impact=release_cost_impact(
                application=original.application, environment=original.environment,
                spec=DeploySpec.from_json(snapshot["spec"]), replicas=target.replicas,
            ),
        )
        audit.release_requested(actor=actor, release=release)
        if original.environment.required_approvals == 0:
            _approve(release, actor=POLICY, message="approved by policy: no approvals required")
        else:
            notifications.release_notify(release=release, event=WebhookEvent.AWAITING_APPROVAL)
    return release


# -- helpers ------------------------------------------------------------------------
def _decide(*, release_id: int, actor: Actor, decision: str, comment: str) -> Release:
    with transaction.atomic():
        release = release_lock(release_id)
        release_require(actor, Action.DECIDE, release)
        _require_state(release, [ReleaseState.REQUESTED], f"{decision}d")
        if decision == Decision.APPROVE:
            _require_pinned(release)
        try:
            with transaction.atomic():
                Approval.objects.create(
                    release=release, approver=actor, decision=decision, comment=comment, fingerprint=release.fingerprint
                )
        except IntegrityError:
            raise Conflict(f"You already decided on release #{release.id}.", code="already_decided") from None
        audit.release_decided(actor=actor, release=release, decision=decision, comment=comment,
                              fingerprint=release.fingerprint)
        if decision == Decision.REJECT:
            before = release.state
            release.reject()
            release.save()
            audit.release_transitioned(actor=actor, release=release, from_state=before,
                                       message=f"{release} rejected by {actor.get_username()}")
            notifications.release_notify(release=release, event=WebhookEvent.REJECTED)
        elif _approvals_missing(release) == 0:
            _approve(release, actor=actor, message=f"{release} approved: policy met")
    return release


def _require_pinned(release: Release) -> None:
    """Approvers approve digests, bytes and a spec: a release filed before those were pinned at filing cannot be
    approved (it is filed again instead)."""
    unpinned = (not release.snapshot.get("spec")
                or (release.builds_image and not release.package_sha256)
                or (not release.builds_image and not release.image_digest and "@" not in release.image))
    if unpinned:
        raise Conflict(f"Release #{release.id} was filed before releases pinned their image digest, package sha256 "
                       "and deploy spec; file it again to approve what will run.", code="release_not_pinned")


def _approvals_missing(release: Release) -> int:
    """Approvals still needed: an approval counts while its approver may still decide (a removed or demoted
    approver's earlier approval no longer does)."""
    approvals = release.approvals.filter(
        Q(voided_at__isnull=True), decision=Decision.APPROVE, fingerprint=release.fingerprint
    ).select_related("approver")
    approvers = [a.approver_id for a in approvals if release_may(a.approver, Action.DECIDE, release)]
    return approvals_missing(required=release.environment.required_approvals, approvers=approvers)


def _approve(release: Release, *, actor: Actor, message: str) -> None:
    before = release.state
    release.approve()
    release.save()
    audit.release_transitioned(actor=actor, release=release, from_state=before, message=message)
    lane_advance_on_commit(release)


def _require_state(release: Release, states: list[str], verb: str) -> None:
    if release.state not in states:
        raise Conflict(f"Release #{release.id} is {release.state}; it cannot be {verb}.", code="wrong_state",
                       extra={"state": release.state})


class Artifact(NamedTuple):
    image: str
    package: Package | None
    package_url: str
    package_sha256: str


def _changed_artifact(release: Release, image: str | None, package: Package | None, url: str | None,
                      sha256: str | None) -> Artifact:
    if package is not None or url is not None:  # a new package source replaces the old one, and its sha256
        package, url, sha256 = package, url or "", sha256 or ""
    else:
        package, url = release.package, release.package_url
        sha256 = release.package_sha256 if sha256 is None else sha256
    # a built release's image is the build repository, re-derived by the check
    image = image if image is not None else "" if release.application.base_image_id else release.image
    return Artifact(image, package, url, sha256)


def _artifact_check(application: Application, artifact: Artifact) -> Artifact:
    """Check what a release runs and return it complete, or raise an error naming the field.

    Built applications take a package (an upload of their project, or an allow-listed URL with an optional
    sha256) and are pushed to the build repository; prebuilt ones take an image reference and no package.
    """
    image, package, url, sha256 = artifact
    if not application.base_image_id:
        if package or url or sha256:
            field = "package" if package else "package_url" if url else "package_sha256"
            _invalid(field, f"{application.name} runs a prebuilt image ({application.image}); send image, not a "
                            "package.")
        if not image:
            raise ApplicationError("image: required (the application has no prebuilt image repository to take it "
                                   "from).", extra={"fields": {"image": ["This field is required."]}})
        try:
            validate_image_reference(image)
            validate_image_registry(image)
        except ValidationError as exc:
            _invalid("image", exc.messages[0])
        return Artifact(image, None, "", "")
    if image and image != build_repository(application):
        _invalid("image", f"{application.name} is built from base image {application.base_image.name}; send a "
                          "package (an uploaded package id or package_url), not an image.")
    if bool(package) == bool(url):
        _invalid("package", "send exactly one of package (an uploaded package id) or package_url.")
    if sha256 and not SHA256.match(sha256):
        _invalid("package_sha256", "must be 64 lowercase hexadecimal digits.")
    if package:
        if package.project_id != application.project_id:
            _invalid("package", f"package #{package.id} belongs to another project.")
        if sha256 and sha256 != package.sha256:
            _invalid("package_sha256", f"does not match the uploaded package's sha256 ({package.sha256}).")
        sha256 = package.sha256
    else:
        problem = package_url_check(url)
        if problem:
            _invalid("package_url", problem)
    return Artifact(build_repository(application), package, url, sha256)


def _artifact_pin(artifact: Artifact) -> tuple[Artifact, str]:
    """Pin what approvers approve: a prebuilt image's digest (its return), a package URL's sha256 (fetched)."""
    if artifact.package is None and not artifact.package_url:
        return artifact, snapshots.digest_resolve(artifact.image)
    if artifact.package_url and not artifact.package_sha256:
        return artifact._replace(package_sha256=snapshots.package_url_hash(artifact.package_url)), ""
    return artifact, ""


def _invalid(field: str, reason: str) -> NoReturn:
    raise invalid_fields({field: [reason]})
