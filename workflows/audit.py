"""The one writer of the audit trail: one keyword-only function per event kind.

Services call these inside the transaction of the change they record, so an
event exists exactly when its change committed. Each event's link is an
HMAC-SHA256 under the first ``SLIPWAY_AUDIT_KEYS`` key (recorded as its
``key_id``) over the previous link and the event's canonical JSON; the chain
head row is locked while appending, so concurrent writers form one chain.
``chain_check`` verifies every link and the chain against the signed
checkpoints kept outside the database (``workflows.anchors``), and names each
rewritten event, removed event or tail, rewound head and unknown key.
"""
import dataclasses
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models, transaction
from django.utils import timezone

from deployments.models import Application, Environment
from paas_site.actors import DIRECTORY, SIGNIN, WORKER, Actor, actor_label, actor_user
from paas_site.correlation import current_correlation_id
from paas_site.crypto import EncryptedTextField

from . import chain
from .chain import GENESIS_HASH, CheckpointInvalid, CheckpointRecord, UnknownKey
from .choices import AuditAction
from .models import AUDIT_HASHED_FIELDS, AuditChainHead, AuditEvent, CiToken, Release, StepRun, audit_canonical

__all__ = ["Actor"]  # re-exported: callers name the actor type beside the writer


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
        actor=WORKER, action=AuditAction.STEP_FINISHED, target=release,
        project_id=release.application.project_id, release_id=release.id,
        after={"step": step_run.step, "attempt": step_run.attempt, "status": step_run.status},
        message=step_run.error or f"{step_run.step} {step_run.status} (attempt {step_run.attempt})",
    )


def signin_locked_out(*, attempt: models.Model, rules: list[str], failures: int) -> AuditEvent:
    """Failed sign-ins reached a lockout limit; ``attempt`` is django-axes' AccessAttempt row."""
    where = {"username": attempt.username, "ip_address": attempt.ip_address}
    return _append(
        actor=SIGNIN, action=AuditAction.SIGNIN_LOCKED_OUT, target=attempt,
        after={**where, "rules": rules, "failures": failures, "path": attempt.path_info},
        message=f"sign-in locked ({', '.join(rules)}) for {attempt.username!r} from {attempt.ip_address} "
                f"after {failures} failed attempts",
    )


def signin_unlocked(*, actor: Actor, attempt: models.Model) -> AuditEvent:
    """An admin lifted a lockout: the failed attempts of ``attempt`` (about to be deleted) are forgotten."""
    where = {"username": attempt.username, "ip_address": attempt.ip_address}
    return _append(
        actor=actor, action=AuditAction.SIGNIN_UNLOCKED, target=attempt,
        before={**where, "failures": attempt.failures_since_start},
        message=f"sign-in unlocked for {attempt.username!r} from {attempt.ip_address}",
    )


def api_token_issued(*, actor: Actor, token: models.Model) -> AuditEvent:
    """A user's API token was made (its value is not recorded, only its name and expiry)."""
    return _append(
        actor=actor, action=AuditAction.API_TOKEN_ISSUED, target=token,
        after={"user": token.user.get_username(), "name": token.name, "expiry": token.expiry.isoformat()},
        message=f"API token {token.name!r} issued to {token.user.get_username()}, expires {token.expiry:%Y-%m-%d %H:%M}",
    )


def api_token_revoked(*, actor: Actor, token: models.Model, reason: str) -> AuditEvent:
    return _append(
        actor=actor, action=AuditAction.API_TOKEN_REVOKED, target=token,
        before={"user": token.user.get_username(), "name": token.name, "expiry": token.expiry.isoformat()},
        message=f"API token {token.name!r} of {token.user.get_username()} revoked: {reason}",
    )


def signin_succeeded(*, user: AbstractBaseUser, method: str, groups: list[str] | None = None) -> AuditEvent:
    """A user signed in (console, admin, API token) through ``method``: local, ldap or oidc."""
    after: dict[str, Any] = {"method": method}
    if groups is not None:
        after["groups"] = groups
    return _append(actor=user, action=AuditAction.SIGNIN_SUCCEEDED, target=user, after=after,
                   message=f"{user.get_username()} signed in ({method})")


def signin_account_disabled(*, user: AbstractBaseUser, source: str, revoked_tokens: int) -> AuditEvent:
    """The directory no longer has (or disabled) the account: the user is deactivated, their tokens revoked."""
    return _append(actor=DIRECTORY, action=AuditAction.SIGNIN_ACCOUNT_DISABLED, target=user,
                   before={"is_active": True}, after={"is_active": False, "revoked_tokens": revoked_tokens},
                   message=f"{user.get_username()} is disabled or gone in {source}: deactivated, "
                           f"{revoked_tokens} API token(s) revoked")


def role_mapped(*, user: AbstractBaseUser, what: str, before: Any, after: Any, groups: list[str],
                project_id: int | None = None) -> AuditEvent:
    """The group mapping gave or took ``what`` (a project role, finance, admin access, platform admin)."""
    granted = after not in (None, False)
    action = AuditAction.ROLE_GRANTED if granted else AuditAction.ROLE_REVOKED
    change = f"{before} → {after}" if before not in (None, False) and granted else ("granted" if granted else "removed")
    return _append(actor=DIRECTORY, action=action, target=user, project_id=project_id,
                   before={what: before}, after={what: after, "groups": groups},
                   message=f"{user.get_username()}: {what} {change} by the group mapping")


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


def ci_token_created(*, actor: Actor, token: CiToken) -> AuditEvent:
    return _append(actor=actor, action=AuditAction.OBJECT_CREATED, target=token, project_id=token.project_id,
                   after=_ci_token_picture(token), message=f"{token} created for {token.owner}")


def ci_token_revoked(*, actor: Actor, token: CiToken) -> AuditEvent:
    return _append(actor=actor, action=AuditAction.OBJECT_CHANGED, target=token, project_id=token.project_id,
                   before={"revoked_at": None}, after={"revoked_at": token.revoked_at.isoformat()},
                   message=f"{token} revoked")


def _ci_token_picture(token: CiToken) -> dict[str, Any]:
    """What a token is, without its hash."""
    return {"project": token.project.slug, "name": token.name, "prefix": token.prefix,
            "owner": token.owner.get_username(), "expires_at": token.expires_at.isoformat()}


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
        actor=actor_label(actor),
        actor_user_id=getattr(actor_user(actor), "pk", None),
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
        key_id=chain.signing_key_id(),
    )
    event.hash = event.compute_hash()
    event.save()
    head.last_hash = event.hash
    head.save(update_fields=["last_hash"])
    return event


# -- verification ----------------------------------------------------------------------------
# What a finding says is wrong; the database's own (DATABASE_KINDS) or the checkpoint store's.
REWRITTEN, REMOVED, UNKNOWN_KEY, HEAD_REWOUND, TAIL_REMOVED, CHECKPOINT = (
    "rewritten", "removed", "unknown_key", "head_rewound", "tail_removed", "checkpoint")
DATABASE_KINDS = {REWRITTEN, REMOVED, UNKNOWN_KEY, HEAD_REWOUND, TAIL_REMOVED}
FINDINGS_KEPT = 50  # a chain recomputed without the key fails at every later event: keep the first ones


@dataclass(frozen=True)
class Finding:
    kind: str
    message: str
    event_id: int | None = None


@dataclass
class ChainReport:
    events: int = 0  # events read
    verified: int = 0  # events whose link verified under a configured key
    verified_before_first_finding: int = 0
    last_event_id: int = 0
    checkpoints: int = 0  # valid checkpoints the chain was compared with
    findings: list[Finding] = dataclasses.field(default_factory=list)
    total_findings: int = 0

    def add(self, kind: str, message: str, event_id: int | None = None) -> None:
        self.total_findings += 1
        if len(self.findings) < FINDINGS_KEPT:
            self.findings.append(Finding(kind, message, event_id))

    @property
    def intact(self) -> bool:
        return not self.total_findings

    @property
    def database_broken(self) -> bool:
        return any(finding.kind in DATABASE_KINDS for finding in self.findings)


def chain_check(*, checkpoints: Iterable[CheckpointRecord] = (), chunk_size: int = 5000) -> ChainReport:
    """Verify every link under ``SLIPWAY_AUDIT_KEYS``, the chain head, and the chain against each checkpoint.

    Reads plain rows: no model instance is built per event. Each link is checked on its own (a MAC does
    not depend on the verdict about the one before it), so every rewritten event is named, not just the first.
    """
    report = ChainReport()
    expected: dict[int, list[chain.Checkpoint]] = {}
    for source in checkpoints:
        checkpoint = _checkpoint_read(source, report)
        if checkpoint is not None:
            expected.setdefault(checkpoint.event_id, []).append(checkpoint)
            report.checkpoints += 1

    verify = chain.link_verifier()
    expected_prev, previous_id, rewritten_run = GENESIS_HASH, 0, 0
    rows = AuditEvent.objects.order_by("id").values_list("id", "prev_hash", "hash", "key_id", *AUDIT_HASHED_FIELDS)
    for event_id, prev_hash, link, key_id, *fields in rows.iterator(chunk_size=chunk_size):
        report.events += 1
        sound = True
        if prev_hash != expected_prev:
            sound = False
            after = f"#{previous_id}" if previous_id else "the start of the chain"
            report.add(REMOVED, f"{_named(event_id, fields)}: its prev_hash is not the link of the event before "
                                f"it ({after}): an event between them was removed or the events were reordered", event_id)
        try:
            linked = verify(prev_hash, audit_canonical(*fields), key_id, link)
        except UnknownKey:
            sound = False
            report.add(UNKNOWN_KEY, f"{_named(event_id, fields)} is linked under key id {key_id!r}, which "
                                    "SLIPWAY_AUDIT_KEYS does not hold: configure that key again, or the event was "
                                    "forged", event_id)
        else:
            if not linked:
                sound = False
                rewritten_run += 1
                if rewritten_run == 1:
                    report.add(REWRITTEN, f"{_named(event_id, fields)}: its content does not match its HMAC link: "
                                          "the event was rewritten (a link cannot be recomputed without the key)",
                               event_id)
            else:
                rewritten_run = _end_of_run(report, rewritten_run, event_id)
        for checkpoint in expected.pop(event_id, ()):
            if checkpoint.hash != link:
                sound = False
                report.add(REWRITTEN, f"{_named(event_id, fields)} is not the event the checkpoint written at "
                                      f"{checkpoint.written_at} names (link {checkpoint.hash[:12]}…, the event's is "
                                      f"{link[:12]}…): it was rewritten, or the chain was cut and rebuilt from there",
                           event_id)
        if sound:
            report.verified += 1
            if not report.total_findings:
                report.verified_before_first_finding += 1
        expected_prev, previous_id = link, event_id
    _end_of_run(report, rewritten_run, None)
    report.last_event_id = previous_id
    _head_check(report, expected_prev)
    _tail_check(report, expected, expected_prev)
    return report


def _named(event_id: int, fields: list[Any]) -> str:
    """How a finding names an event (built only for a finding: the loop stays cheap)."""
    return f"event #{event_id} ({fields[3]}, {fields[0]:%Y-%m-%d %H:%M:%S})"


def _checkpoint_read(source: CheckpointRecord, report: ChainReport) -> chain.Checkpoint | None:
    if source.error:
        report.add(CHECKPOINT, f"checkpoint {source.where} cannot be read: {source.error}")
        return None
    try:
        return chain.checkpoint_verify(source.record)
    except UnknownKey as exc:
        report.add(CHECKPOINT, f"checkpoint {source.where} is signed with key id {exc.key_id!r}, which "
                               "SLIPWAY_AUDIT_KEYS does not hold: configure that key again, or it was forged")
    except CheckpointInvalid as exc:
        report.add(CHECKPOINT, f"checkpoint {source.where} is not valid: {exc}")
    return None


def _end_of_run(report: ChainReport, run: int, event_id: int | None) -> int:
    if run > 1:
        where = f"up to the event before #{event_id}" if event_id else "up to the newest event"
        report.add(REWRITTEN, f"the {run - 1} events after it do not match their links either ({where}): "
                              "they were rewritten or their links recomputed without the key")
    return 0


def _head_check(report: ChainReport, last_link: str) -> None:
    head = AuditChainHead.objects.filter(id=1).values_list("last_hash", flat=True).first()
    if head is None and report.events:
        report.add(HEAD_REWOUND, "the chain head row is missing: it was deleted")
        return
    if (head or GENESIS_HASH) == last_link:
        return
    named = AuditEvent.objects.filter(hash=head).values_list("id", flat=True).first()
    if named is not None:
        later = AuditEvent.objects.filter(id__gt=named).count()
        report.add(HEAD_REWOUND, f"the chain head names event #{named}, but {later} later event(s) exist: "
                                 "the head row was rewound")
    else:
        report.add(TAIL_REMOVED, "the chain head names a link no event has: the newest events were removed "
                                 f"(the chain now ends at #{report.last_event_id or 'the start'})")


def _tail_check(report: ChainReport, unmatched: dict[int, list[chain.Checkpoint]], last_link: str) -> None:
    """Checkpoints naming events that are not there: removed from the middle, or a removed tail."""
    for event_id in sorted(unmatched):
        checkpoint = unmatched[event_id][-1]
        if event_id == 0 and checkpoint.hash == GENESIS_HASH:
            continue  # written while the chain was empty
        what = f"the checkpoint written at {checkpoint.written_at} names event #{event_id} (link {checkpoint.hash[:12]}…)"
        if event_id < report.last_event_id:
            report.add(REMOVED, f"{what}, which is missing: it was removed", event_id)
            continue
        head = AuditChainHead.objects.filter(id=1).values_list("last_hash", flat=True).first() or GENESIS_HASH
        rewound = " and the chain head row rewound to match" if head == last_link else ""
        report.add(TAIL_REMOVED, f"{what}, which is gone: the events after "
                                 f"#{report.last_event_id or 'the start'} were removed{rewound}", event_id)
        return  # the newest such checkpoint names the same removal as the older ones


def chain_verify(*, chunk_size: int = 5000) -> tuple[int, AuditEvent | None, str]:
    """The database's chain alone: (events verified before the first problem, the event it names or None, reason)."""
    report = chain_check(chunk_size=chunk_size)
    if report.intact:
        return report.verified, None, ""
    first = report.findings[0]
    event = AuditEvent.objects.filter(id=first.event_id).first() if first.event_id else None
    return report.verified_before_first_finding, event, first.message
