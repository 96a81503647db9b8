"""The process: releases, approvals, steps, freeze windows, hooks, and the audit trail."""
import copy
import hashlib
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, transition
from knox.models import AbstractAuthToken

from deployments.choices import Role
from deployments.models import Application, Environment, Package, Project, Revision
from deployments.specs import DeploySpec, canonical_sha256
from paas_site import outbound
from paas_site.crypto import EncryptedTextField

from . import chain, chat
from .choices import (
    IN_FLIGHT,
    SIGNED_CHANNELS,
    STATE_OF_STEP,
    AttemptOutcome,
    AuditAction,
    ChannelKind,
    Decision,
    DeliveryStatus,
    FreezeKind,
    MappingGrant,
    MappingSource,
    NotificationEvent,
    ReleaseState,
    SignInMethod,
    Step,
    StepStatus,
    WebhookEvent,
)

S = ReleaseState
FINGERPRINT_SHORT = 12


class Release(ConcurrentTransitionMixin, models.Model):
    """A request to run a version of an application in an environment.

    Transition methods only change fields; the services lock the row, call
    them, save, audit and enqueue work (see ``workflows.services``).
    """

    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="releases")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="releases")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="releases",
        help_text="Empty when a CI hook filed it.",
    )
    requested_via = models.CharField(max_length=16, default="api")
    version = models.CharField(max_length=128)
    image = models.CharField(
        max_length=512, help_text="Prebuilt image reference as filed (tag or digest); for a built image, the "
        "repository Slipway pushes it to.",
    )
    package = models.ForeignKey(
        Package, null=True, blank=True, on_delete=models.PROTECT, related_name="releases",
        help_text="Uploaded package to build into the application's base image.",
    )
    package_url = models.URLField(max_length=2000, blank=True, help_text="Or: where to fetch the package from.")
    package_sha256 = models.CharField(
        max_length=64, blank=True, help_text="The package's sha256 (an upload's is computed; a URL's is verified)."
    )
    commit = models.CharField(max_length=64, blank=True, help_text="Source revision, labelled on a built image.")
    image_digest = models.CharField(
        max_length=80, blank=True, help_text="sha256 digest: a prebuilt image's is pinned at filing, a built one's by the build.",
    )
    config = models.JSONField(default=dict, blank=True, help_text='{"env": {NAME: value}, "files": {name: content}}')
    config_hash = models.CharField(max_length=64)
    snapshot = models.JSONField(
        default=dict, blank=True, encoder=DjangoJSONEncoder,
        help_text="Frozen at filing: the deploy spec (every input that reaches the cluster) and, for a rollback, "
        "the revision it restores. The steps run this, never the live application.",
    )
    description = models.TextField(blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True, help_text="Do not start before this time.")
    state = FSMField(default=S.REQUESTED, choices=S.choices, protected=True, db_index=True)
    revision = models.ForeignKey(
        Revision, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="What it deployed."
    )
    replaced = models.ForeignKey(
        Revision, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="What ran before this release deployed: the automatic rollback target (empty: nothing).",
    )
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="rollbacks",
        help_text="For a rollback release: the release it undoes.",
    )
    rollback_to = models.ForeignKey(
        Revision, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="For a rollback release: the earlier revision it re-applies.",
    )
    cost_impact = models.JSONField(
        null=True, blank=True, encoder=DjangoJSONEncoder,
        help_text="Monthly cost of this release vs what runs now, at filing-time prices.",
    )
    resume_step = models.CharField(max_length=16, choices=Step.choices, blank=True)
    failed_step = models.CharField(max_length=16, choices=Step.choices, blank=True)
    failure_reason = models.TextField(blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "environment"], condition=Q(state__in=IN_FLIGHT),
                name="release_one_in_flight_per_lane",
                violation_error_message="Another release of this application is already in flight in this environment.",
            ),
        ]
        indexes = [models.Index(fields=["application", "environment", "state"])]

    def __str__(self) -> str:
        return f"release #{self.pk} {self.application.name} {self.version} → {self.environment.name}"

    def save(self, *args, **kwargs):
        filed = getattr(self, "_filed_snapshot", None)
        if not self._state.adding and filed is not None and self.snapshot != filed:
            raise ValueError("A release's snapshot is frozen when it is filed; file a new release instead.")
        super().save(*args, **kwargs)

    @classmethod
    def from_db(cls, db, field_names, values):
        release = super().from_db(db, field_names, values)
        release._filed_snapshot = copy.deepcopy(release.__dict__.get("snapshot"))
        return release

    @property
    def builds_image(self) -> bool:
        """Built by Slipway from a package (else: a prebuilt image)."""
        return bool(self.package_id or self.package_url)

    @property
    def spec(self) -> DeploySpec | None:
        """The deploy spec frozen when the release was filed (None only for a row made without the services)."""
        return DeploySpec.from_json(self.snapshot["spec"]) if self.snapshot.get("spec") else None

    @property
    def fingerprint(self) -> str:
        """What an approval is bound to: the whole snapshot, the pinned artifact, the commit and the config."""
        if self.builds_image:
            artifact = {"package": self.package_id, "url": self.package_url, "sha256": self.package_sha256}
        else:
            artifact = {"image": self.image, "digest": self.image_digest}
        return canonical_sha256({"snapshot": self.snapshot, "artifact": artifact, "commit": self.commit,
                                 "config_hash": self.config_hash})

    @property
    def fingerprint_short(self) -> str:
        return self.fingerprint[:FINGERPRINT_SHORT]

    @property
    def pinned_image(self) -> str:
        """``repo:tag@sha256:…``: the digest decides what runs, the tag stays readable."""
        if not self.image_digest:
            return self.image
        return f"{self.image.split('@', 1)[0]}@{self.image_digest}"

    # -- transitions: fields only -------------------------------------------------
    @transition(field=state, source=S.REQUESTED, target=S.APPROVED)
    def approve(self) -> None:
        self.approved_at = timezone.now()

    @transition(field=state, source=S.REQUESTED, target=S.REJECTED)
    def reject(self) -> None:
        self.finished_at = timezone.now()

    @transition(field=state, source=[S.REQUESTED, S.APPROVED], target=S.CANCELLED)
    def cancel(self) -> None:
        self.finished_at = timezone.now()

    @transition(field=state, source=S.APPROVED, target=RETURN_VALUE(*STATE_OF_STEP.values()))
    def start(self) -> str:
        self.started_at = timezone.now()  # of this run: a retried release gets the reaper's full budget again
        step, self.resume_step = self.resume_step or Step.BUILD, ""
        return STATE_OF_STEP[step]

    @transition(field=state, source=S.BUILDING, target=S.DEPLOYING)
    def deploy(self) -> None:
        pass

    @transition(field=state, source=S.DEPLOYING, target=S.VERIFYING)
    def verify(self) -> None:
        pass

    @transition(field=state, source=S.VERIFYING, target=S.SUCCEEDED)
    def succeed(self) -> None:
        self.finished_at = timezone.now()

    @transition(field=state, source=[S.BUILDING, S.DEPLOYING, S.VERIFYING, S.ROLLING_BACK], target=S.FAILED)
    def fail(self, *, step: str, reason: str) -> None:
        self.failed_step, self.failure_reason = step, reason
        self.finished_at = timezone.now()

    @transition(field=state, source=S.FAILED, target=S.ROLLING_BACK)
    def roll_back(self) -> None:
        self.finished_at = None

    @transition(field=state, source=S.ROLLING_BACK, target=S.ROLLED_BACK)
    def finish_rollback(self) -> None:
        self.finished_at = timezone.now()

    @transition(field=state, source=S.FAILED, target=S.APPROVED)
    def retry(self) -> None:
        self.resume_step, self.failed_step, self.failure_reason = self.failed_step, "", ""
        self.finished_at = None


class Approval(models.Model):
    """One approver's decision on one release, bound to what they were shown."""

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True)
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    voided_at = models.DateTimeField(null=True, blank=True, help_text="Set when the release changed after it.")

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["release", "approver"], condition=Q(voided_at__isnull=True), name="approval_once_per_approver"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver} {self.decision}d release #{self.release_id}"


class StepRun(models.Model):
    """One attempt at one step of a release, with its log."""

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="steps")
    step = models.CharField(max_length=16, choices=Step.choices)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, help_text="A worker holds the step until then.")
    lease_token = models.CharField(
        max_length=100, blank=True, help_text="Who holds the lease (worker process and claim); only they renew it."
    )
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["release", "started_at", "id"]
        constraints = [models.UniqueConstraint(fields=["release", "step", "attempt"], name="steprun_unique_attempt")]

    def __str__(self) -> str:
        return f"{self.step} #{self.attempt} of release #{self.release_id}: {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None


class LaneOperation(models.Model):
    """A claim on a lane by an operation on the running application (scale, decommission), like a step's.

    At most one per lane; while it exists no release of the lane starts, and it is taken only while no
    release is in flight. The row is deleted when the operation ends; ``expires_at`` lets a lane whose
    operation died with its process go on (the operation's fence then stops it at its next write).
    """

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="lane_operations")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="lane_operations")
    kind = models.CharField(max_length=16)
    actor = models.CharField(max_length=150)
    started_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["application", "environment"], name="lane_operation_one_per_lane"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.application_id} in {self.environment_id} by {self.actor}"


def validate_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin).")


class FreezeWindow(models.Model):
    """A period in which approved releases of an environment wait instead of starting."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="freeze_windows")
    kind = models.CharField(max_length=8, choices=FreezeKind.choices, default=FreezeKind.WEEKLY)
    reason = models.CharField(max_length=200, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    # weekly: from (weekday, time) to (weekday, time), Monday = 0, may wrap over the weekend
    start_weekday = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(6)])
    start_time = models.TimeField(null=True, blank=True)
    end_weekday = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(6)])
    end_time = models.TimeField(null=True, blank=True)
    # once: from starts_at to ends_at
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["environment", "kind", "id"]

    def __str__(self) -> str:
        return f"freeze of {self.environment}: {self.reason or self.kind}"

    def clean(self) -> None:
        weekly = (self.start_weekday, self.start_time, self.end_weekday, self.end_time)
        if self.kind == FreezeKind.WEEKLY:
            if any(v is None for v in weekly):
                raise ValidationError("A weekly freeze needs start weekday and time and end weekday and time.")
            if (self.start_weekday, self.start_time) == (self.end_weekday, self.end_time):
                raise ValidationError("A weekly freeze must not start and end at the same moment.")
        else:
            if not (self.starts_at and self.ends_at):
                raise ValidationError("A one-off freeze needs starts_at and ends_at.")
            if self.ends_at <= self.starts_at:
                raise ValidationError({"ends_at": "must be after starts_at."})


class ProjectWebhook(models.Model):
    """An outgoing notification of release events, signed with HMAC-SHA256."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = EncryptedTextField(help_text="Signs each body: X-Slipway-Signature: sha256=<hex>.")
    events = models.JSONField(default=list, help_text=f"Any of: {', '.join(WebhookEvent.values)}.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"webhook of {self.project} → {self.url}"

    def clean(self) -> None:
        if not isinstance(self.events, list) or not set(self.events) <= set(WebhookEvent.values):
            raise ValidationError({"events": f"must be a list of: {', '.join(WebhookEvent.values)}."})
        problem = outbound.url_check(self.url)  # early word for a literal address; names are checked on connect
        if problem:
            raise ValidationError({"url": problem})


class CiToken(models.Model):
    """A project's secret for the CI hook, owned by the user who created it; only its SHA-256 is stored.

    A release it files is the owner's (requested_by), so the owner's role decides whether it may file and
    the no-self-approval rule holds for it. It works until it expires or is revoked.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ci_tokens")
    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="ci_tokens",
        help_text="Who created it: releases it files are theirs. Tokens from before owners existed have none "
                  "and are refused.",
    )
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="First characters, to tell tokens apart.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, help_text="Refused from then on.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.project} CI token {self.name} ({self.prefix}…)"

    def is_usable(self, now: datetime) -> bool:
        """Owned, not revoked, not expired (a token without an expiry predates them: refused)."""
        return (self.owner_id is not None and self.revoked_at is None and self.expires_at is not None
                and now < self.expires_at)

    @staticmethod
    def hash_of(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def delete(self):
        raise PermissionError("Audit events are append-only.")


class AuditEvent(models.Model):
    """One recorded change. Chained: each event's ``hash`` is an HMAC-SHA256 link over the previous
    link and its content, under the key ``key_id`` names (``workflows.chain``; keys outside the database).

    Written only through ``workflows.audit``, in the transaction of the change
    it records; never updated or deleted (``manage.py audit_verify`` checks).
    """

    created_at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150, help_text="user:<username> or system:<component>")
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    action = models.CharField(max_length=64, choices=AuditAction.choices, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=255)
    project_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    release_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=32, help_text="the SLIPWAY_AUDIT_KEYS key id the link is signed with")

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.id} {self.action} {self.target_repr} by {self.actor}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def canonical(self) -> dict[str, Any]:
        """The hashed content: every field but the hash itself, in a stable form."""
        return audit_canonical(*(getattr(self, name) for name in AUDIT_HASHED_FIELDS))

    def compute_hash(self) -> str:
        return chain.link_hash(self.prev_hash, self.canonical(), self.key_id)


# The fields an audit event's hash covers, in the order ``audit_canonical`` takes them.
AUDIT_HASHED_FIELDS = (
    "created_at", "actor", "actor_user_id", "action", "target_type", "target_id", "target_repr", "project_id",
    "release_id", "from_state", "to_state", "before", "after", "message", "correlation_id",
)


def audit_canonical(
    created_at, actor, actor_user_id, action, target_type, target_id, target_repr, project_id, release_id,
    from_state, to_state, before, after, message, correlation_id,
) -> dict[str, Any]:
    """An event's hashed content from plain field values, so the chain can be verified without model instances."""
    return {
        "created_at": created_at.isoformat(),
        "actor": actor,
        "actor_user": actor_user_id,
        "action": action,
        "target": [target_type, target_id, target_repr],
        "project": project_id,
        "release": release_id,
        "states": [from_state, to_state],
        "before": before,
        "after": after,
        "message": message,
        "correlation_id": correlation_id,
    }


class AuditChainHead(models.Model):
    """A single row holding the newest link; locking it serializes chain appends.

    The database can rewind it; the signed checkpoints outside the database are what show that.
    """

    last_hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return self.last_hash


class ApiToken(AbstractAuthToken):
    """A user's API token (django-rest-knox): named, expiring; only its SHA-512 digest is stored.

    ``token_key`` (knox's lookup prefix) is part of the token: it is never shown, in the admin or anywhere.
    """

    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=128, unique=True)
    name = models.CharField(max_length=100)
    expiry = models.DateTimeField()

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["user", "expiry"])]

    def __str__(self) -> str:
        return f"{self.user} API token {self.name}"

    @property
    def expired(self) -> bool:
        return self.expiry <= timezone.now()


# -- notifications (workflows.services.notifications) -------------------------------------
class NotificationChannel(models.Model):
    """A project's chat robot. Its URL is a credential (it holds the robot's token or key): encrypted at rest,
    written but never shown, like the signing secret."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="notification_channels")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    url = EncryptedTextField(help_text="The robot's webhook URL (write-only).")
    secret = EncryptedTextField(blank=True, help_text="DingTalk / Feishu signing secret (write-only).")
    events = models.JSONField(default=list, help_text=f"Any of: {', '.join(NotificationEvent.values)}.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="notification_channel_unique_name")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name} of {self.project}"

    @property
    def url_host(self) -> str:
        """What may be shown of the URL: its host."""
        return urlsplit(self.url).hostname or ""

    def clean(self) -> None:
        problems = {}
        if not isinstance(self.events, list) or not set(self.events) <= set(NotificationEvent.values):
            problems["events"] = f"must be a list of: {', '.join(NotificationEvent.values)}."
        if self.url and outbound.url_check(self.url):
            problems["url"] = outbound.url_check(self.url)
        if self.secret and self.kind not in SIGNED_CHANNELS:
            problems["secret"] = f"only {' and '.join(SIGNED_CHANNELS)} robots sign their messages."
        if problems:
            raise ValidationError(problems)


CHAT_ID_VALID = RegexValidator(rf"\A{chat.CHAT_ID.pattern}\Z", "must be a chat user id: letters, digits and . _ - @ only.")


class NotificationProfile(models.Model):
    """A user's notification preferences: per event kind, the media that reach them; and their chat ids,
    by which the project's chat robots mention them."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_profile")
    preferences = models.JSONField(default=dict, blank=True, help_text="{event: [media]}; a missing event: the default.")
    slack_id = models.CharField(max_length=64, blank=True, validators=[CHAT_ID_VALID], help_text="Slack member ID (U…).")
    dingtalk_id = models.CharField(max_length=64, blank=True, validators=[CHAT_ID_VALID], help_text="DingTalk userId.")
    wecom_id = models.CharField(max_length=64, blank=True, validators=[CHAT_ID_VALID], help_text="WeCom userid.")
    feishu_id = models.CharField(max_length=64, blank=True, validators=[CHAT_ID_VALID],
                                 help_text="Feishu / Lark open_id (ou_…).")

    def __str__(self) -> str:
        return f"notification preferences of {self.user}"

    def chat_id(self, kind: str) -> str:
        return getattr(self, f"{kind}_id", "")


class Notification(models.Model):
    """One event worth telling people about; its message is frozen when it happens (in the change's transaction)."""

    event = models.CharField(max_length=32, choices=NotificationEvent.choices)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="notifications")
    release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    budget_alert = models.ForeignKey("billing.BudgetAlert", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    message = models.JSONField(default=dict, help_text='{"subject", "lines", "links": [{"label", "url"}]}')
    created_at = models.DateTimeField(auto_now_add=True)
    fanned_out_at = models.DateTimeField(null=True, blank=True, help_text="When its deliveries were made.")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"notification #{self.pk} {self.event}"


class NotificationDelivery(models.Model):
    """One notification to one recipient over one medium, or to one chat channel: made once, delivered once."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="notification_deliveries")
    channel = models.ForeignKey(NotificationChannel, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="deliveries")
    medium = models.CharField(max_length=16, help_text="email, console, or the channel's kind")
    target = models.CharField(max_length=255, help_text="Whom it went to, as shown (never a URL).")
    mentions = models.JSONField(default=list, blank=True, help_text="Usernames a chat message mentions.")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "recipient", "medium"], condition=Q(recipient__isnull=False),
                                    name="notification_delivery_once_per_recipient_medium"),
            models.UniqueConstraint(fields=["notification", "channel"], condition=Q(channel__isnull=False),
                                    name="notification_delivery_once_per_channel"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.medium} of notification #{self.notification_id} to {self.target}: {self.status}"


class DeliveryAttempt(models.Model):
    """One try at a delivery, kept for maintainers (and counted by outcome)."""

    delivery = models.ForeignKey(NotificationDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, db_index=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="delivery_attempt_unique_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery #{self.delivery_id}: {self.outcome}"


class GroupRoleMapping(models.Model):
    """One rule of the group mapping: members of ``group`` (as the sign-in ``source`` names it) get ``grant``.

    Applied at every sign-in through LDAP or OpenID Connect (``workflows.services.directory``); what a rule
    granted is taken away at the first sign-in without the group. Platform admins edit it (admin, API).
    """

    source = models.CharField(max_length=8, choices=MappingSource.choices, default=MappingSource.ANY)
    group = models.CharField(max_length=255, help_text="The group's name: its cn in LDAP, a value of the groups "
                                                       "claim in OpenID Connect. Compared without case.")
    grant = models.CharField(max_length=16, choices=MappingGrant.choices)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="group_mappings")
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)

    class Meta:
        ordering = ["group", "grant", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "group", "grant", "project"], name="group_mapping_unique",
                                    nulls_distinct=False),
            models.CheckConstraint(
                name="group_mapping_project_role_names_both",
                condition=(Q(grant=MappingGrant.PROJECT_ROLE, project__isnull=False) & ~Q(role=""))
                | (~Q(grant=MappingGrant.PROJECT_ROLE) & Q(project__isnull=True, role="")),
            ),
        ]

    def __str__(self) -> str:
        what = f"{self.role} of {self.project}" if self.grant == MappingGrant.PROJECT_ROLE else self.grant
        return f"{self.source} group {self.group} → {what}"


class DirectoryAccount(models.Model):
    """The link of a Slipway user to the directory or OpenID provider that signs them in.

    A user with one was made by that sign-in and no other: a directory never takes over a local account. The
    ``granted_*`` flags say which platform-wide rights the group mapping gave, so it takes back only those.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_account")
    source = models.CharField(max_length=8, choices=SignInMethod.choices)
    subject = models.CharField(max_length=512, help_text="The LDAP DN, or the OpenID subject (sub).")
    groups = models.JSONField(default=list, blank=True, help_text="The groups seen at the latest check.")
    checked_at = models.DateTimeField(help_text="When the directory last confirmed the account.")
    granted_finance = models.BooleanField(default=False)
    granted_admin_access = models.BooleanField(default=False)
    granted_approvers_group = models.BooleanField(default=False)
    granted_platform_admin = models.BooleanField(default=False)
    disabled_by_directory = models.BooleanField(
        default=False, help_text="Deactivated because the directory no longer has the account (or disabled it); a "
                                 "sign-in through the directory activates it again.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "subject"], name="directory_account_unique")]

    def __str__(self) -> str:
        return f"{self.user} via {self.source}"
