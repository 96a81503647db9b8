"""The one writer of the audit trail: one keyword-only function per event kind.

Services call these inside the transaction of the change they record, so an
event exists exactly when its change committed. Each event's hash covers the
previous event's hash and the event's canonical JSON; the chain head row is
locked while appending, so concurrent writers form one chain.
"""
import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.utils import timezone

from deployments.models import Application, Environment
from paas_site.correlation import current_correlation_id
from paas_site.crypto import EncryptedTextField

from .choices import AuditAction
from .models import AUDIT_HASHED_FIELDS, AuditChainHead, AuditEvent, Release, StepRun, audit_canonical, audit_hash

GENESIS_HASH = "0" * 64
Actor = AbstractBaseUser | str  # a user, or "system:<component>"


def release_requested(*, actor: Actor, release: Release) -> AuditEvent:
    return _append(
        actor=actor, action=AuditAction.RELEASE_REQUESTED, target=release, project_id=release.application.project_id,
        release_id=release.id, to_state=release.state, after=release_picture(release),
        message=f"{release} requested: {release.image}",
    )


def release_changed(*, actor: Actor, release: Release, before: dict[str, Any], voided: int) -> AuditEvent:
    after = release_picture(release)
    changed = sorted(name for name in after if before.get(name) != after[name])
    return _append(
        actor=actor, action=AuditAction.RELEASE_CHANGED, target=release, project_id=release.application.project_id,
        release_id=release.id, before={k: before.get(k) for k in changed}, after={k: after[k] for k in changed},
        message=f"{release} changed ({', '.join(changed) or 'nothing'}); {voided} earlier approval(s) voided",
    )


def release_decided(*, actor: Actor, release: Release, decision: str, comment: str, fingerprint: str) -> AuditEvent:
    action = AuditAction.RELEASE_APPROVED if decision == "approve" else AuditAction.RELEASE_REJECTED
    return _append(
        actor=actor, action=action, target=release, project_id=release.application.project_id, release_id=release.id,
        after={"decision": decision, "fingerprint": fingerprint}, message=comment or f"{decision}d without comment",
    )


def release_transitioned(*, actor: Actor, release: Release, from_state: str, message: str = "") -> AuditEvent:
    return _append(
        actor=actor, action=AuditAction.RELEASE_TRANSITIONED, target=release,
        project_id=release.application.project_id, release_id=release.id, from_state=from_state,
        to_state=release.state, message=message or f"{release} {from_state} → {release.state}",
    )


def step_finished(*, release: Release, step_run: StepRun) -> AuditEvent:
    return _append(
        actor="system:worker", action=AuditAction.STEP_FINISHED, target=release,
        project_id=release.application.project_id, release_id=release.id,
        after={"step": step_run.step, "attempt": step_run.attempt, "status": step_run.status},
        message=step_run.error or f"{step_run.step} {step_run.status} (attempt {step_run.attempt})",
    )


def release_picture(release: Release) -> dict[str, Any]:
    picture = {
        "version": release.version, "image": release.image, "config_hash": release.config_hash,
        "description": release.description,
        "scheduled_at": release.scheduled_at.isoformat() if release.scheduled_at else None,
    }
    if release.builds_image or release.commit:
        picture.update(package=release.package_id, package_url=release.package_url,
                       package_sha256=release.package_sha256, commit=release.commit)
    return picture


def application_scaled(
    *, actor: Actor, application: Application, environment: Environment, before: int, after: int
) -> AuditEvent:
    return _append(
        actor=actor, action=AuditAction.APPLICATION_SCALED, target=application, project_id=application.project_id,
        before={"replicas": before, "environment": environment.name},
        after={"replicas": after, "environment": environment.name},
        message=f"{application.name} in {environment.name} scaled from {before} to {after} replicas",
    )


def application_decommissioned(
    *, actor: Actor, application: Application, environment: Environment, revision: int | None
) -> AuditEvent:
    return _append(
        actor=actor, action=AuditAction.APPLICATION_DECOMMISSIONED, target=application,
        project_id=application.project_id, before={"environment": environment.name, "revision": revision},
        message=f"{application.name} removed from {environment.name}" + ("" if revision else " (nothing was running)"),
    )


def object_created(*, actor: Actor, obj: models.Model) -> AuditEvent:
    return _append(actor=actor, action=AuditAction.OBJECT_CREATED, target=obj, project_id=_project_id(obj),
                   after=snapshot(obj), message=f"{obj._meta.verbose_name} {obj} created")


def object_changed(*, actor: Actor, obj: models.Model, before: dict[str, Any]) -> AuditEvent:
    after = snapshot(obj)
    changed = sorted(name for name in after if before.get(name) != after[name])
    return _append(
        actor=actor, action=AuditAction.OBJECT_CHANGED, target=obj, project_id=_project_id(obj),
        before={name: before.get(name) for name in changed}, after={name: after[name] for name in changed},
        message=f"{obj._meta.verbose_name} {obj} changed: {', '.join(changed) or 'nothing'}",
    )


def object_deleted(*, actor: Actor, obj: models.Model, before: dict[str, Any]) -> AuditEvent:
    return _append(actor=actor, action=AuditAction.OBJECT_DELETED, target=obj, project_id=_project_id(obj),
                   before=before, message=f"{obj._meta.verbose_name} {obj} deleted")


def password_changed(*, actor: Actor, user: AbstractBaseUser) -> AuditEvent:
    """A user's password was set or disabled; the event holds neither the password nor its hash."""
    outcome = "changed" if user.has_usable_password() else "disabled"
    return _append(actor=actor, action=AuditAction.OBJECT_CHANGED, target=user, after={"password": outcome},
                   message=f"{user._meta.verbose_name} {user}: password {outcome}")


# A user's password hash is a credential, and its last sign-in is bookkeeping: neither is recorded.
USER_UNRECORDED_FIELDS = {"password", "last_login"}


def snapshot(obj: models.Model) -> dict[str, Any]:
    """A JSON-safe picture of a model's fields; secrets appear only as a keyed marker."""
    picture: dict[str, Any] = {}
    skipped = USER_UNRECORDED_FIELDS if isinstance(obj, AbstractBaseUser) else set()
    for field in obj._meta.concrete_fields:
        if getattr(field, "auto_now", False) or field.name in skipped:
            continue  # bookkeeping, not configuration
        value = getattr(obj, field.attname)
        if isinstance(field, EncryptedTextField):
            value = secret_marker(value)
        elif not isinstance(value, str | int | float | bool | dict | list | type(None)):
            value = str(value)
        picture[field.name] = value
    if obj.pk:
        for field in obj._meta.many_to_many:
            picture[field.name] = sorted(str(related) for related in getattr(obj, field.name).all())
    return picture


def secret_marker(value: str) -> str:
    """"(set <tag>)": a rotation shows as a change, yet the value cannot be recovered (keyed with SECRET_KEY)."""
    if not value:
        return ""
    return f"(set {hmac.new(settings.SECRET_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()[:8]})"


def _project_id(obj: models.Model) -> int | None:
    return obj.pk if obj._meta.model_name == "project" else getattr(obj, "project_id", None)


def _append(
    *, actor: Actor, action: str, target: models.Model, project_id: int | None = None, release_id: int | None = None,
    from_state: str = "", to_state: str = "", before: Any = None, after: Any = None, message: str = "",
) -> AuditEvent:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Audit events must be written inside the transaction of the change they record.")
    head, _ = AuditChainHead.objects.select_for_update().get_or_create(id=1, defaults={"last_hash": GENESIS_HASH})
    event = AuditEvent(
        created_at=timezone.now(),
        actor=actor if isinstance(actor, str) else f"user:{actor.get_username()}",
        actor_user_id=None if isinstance(actor, str) else actor.pk,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_repr=str(target)[:255],
        project_id=project_id,
        release_id=release_id,
        from_state=from_state,
        to_state=to_state,
        before=before,
        after=after,
        message=message,
        correlation_id=current_correlation_id.get(),
        prev_hash=head.last_hash,
    )
    event.hash = event.compute_hash()
    event.save()
    head.last_hash = event.hash
    head.save(update_fields=["last_hash"])
    return event


def chain_verify(*, chunk_size: int = 5000) -> tuple[int, AuditEvent | None, str]:
    """Re-compute the chain. Returns (events checked, first bad event or None, reason).

    Reads plain rows: no model instance is built per event, only for the broken one it names.
    """
    expected_prev = GENESIS_HASH
    checked = 0
    rows = AuditEvent.objects.order_by("id").values_list("id", "prev_hash", "hash", *AUDIT_HASHED_FIELDS)
    for event_id, prev_hash, event_hash, *fields in rows.iterator(chunk_size=chunk_size):
        if prev_hash != expected_prev:
            return checked, AuditEvent.objects.get(id=event_id), (
                "its prev_hash does not match the previous event's hash (an event was removed or reordered)")
        if audit_hash(prev_hash, audit_canonical(*fields)) != event_hash:
            return checked, AuditEvent.objects.get(id=event_id), (
                "its content does not match its hash (the event was altered)")
        expected_prev = event_hash
        checked += 1
    head = AuditChainHead.objects.filter(id=1).values_list("last_hash", flat=True).first() or GENESIS_HASH
    if head != expected_prev:
        return checked, None, "the newest events were removed (the chain head names a later hash)"
    return checked, None, ""
