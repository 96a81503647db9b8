from django.db import models


class ReleaseState(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    BUILDING = "building", "Building"
    DEPLOYING = "deploying", "Deploying"
    VERIFYING = "verifying", "Verifying"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLING_BACK = "rolling_back", "Rolling back"
    ROLLED_BACK = "rolled_back", "Rolled back"


CANCELLABLE = [ReleaseState.REQUESTED, ReleaseState.APPROVED]
# At most one release per (application, environment) may be in one of these.
IN_FLIGHT = [ReleaseState.BUILDING, ReleaseState.DEPLOYING, ReleaseState.VERIFYING, ReleaseState.ROLLING_BACK]
FINAL = [ReleaseState.REJECTED, ReleaseState.CANCELLED, ReleaseState.SUCCEEDED, ReleaseState.FAILED,
         ReleaseState.ROLLED_BACK]


class Step(models.TextChoices):
    BUILD = "build", "Build"
    DEPLOY = "deploy", "Deploy"
    VERIFY = "verify", "Verify"
    ROLLBACK = "rollback", "Roll back"


# The state a release is in while a step runs, and the step that runs in it.
STEP_OF_STATE = {
    ReleaseState.BUILDING: Step.BUILD,
    ReleaseState.DEPLOYING: Step.DEPLOY,
    ReleaseState.VERIFYING: Step.VERIFY,
    ReleaseState.ROLLING_BACK: Step.ROLLBACK,
}
STATE_OF_STEP = {step: state for state, step in STEP_OF_STATE.items()}


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Waiting to retry"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class FreezeKind(models.TextChoices):
    WEEKLY = "weekly", "Every week"
    ONCE = "once", "Once"


class WebhookEvent(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    REJECTED = "rejected", "Rejected"
    BUDGET_THRESHOLD_REACHED = "budget.threshold_reached", "Budget threshold reached"


# Notifications (workflows.services.notifications) are about the same events as project webhooks.
NotificationEvent = WebhookEvent


class Medium(models.TextChoices):
    """How a notification reaches a user: chosen per event kind in their preferences."""

    EMAIL = "email", "Email"
    CHAT = "chat", "Chat (mentioned in the project's chat channels)"
    CONSOLE = "console", "Console (my notifications page)"


class ChannelKind(models.TextChoices):
    """A project's chat channel: an incoming-webhook robot of one of these."""

    SLACK = "slack", "Slack-compatible incoming webhook"
    DINGTALK = "dingtalk", "DingTalk robot"
    WECOM = "wecom", "WeCom (企业微信) group robot"
    FEISHU = "feishu", "Feishu / Lark bot"


SIGNED_CHANNELS = (ChannelKind.DINGTALK, ChannelKind.FEISHU)  # the kinds that take a signing secret


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class AttemptOutcome(models.TextChoices):
    """What one delivery attempt came to (counted by the metrics)."""

    DELIVERED = "delivered", "Delivered"
    RETRYING = "retrying", "Failed, will retry"
    FAILED = "failed", "Failed for good"


class AuditAction(models.TextChoices):
    RELEASE_REQUESTED = "release.requested", "Release requested"
    RELEASE_CHANGED = "release.changed", "Release changed"
    RELEASE_APPROVED = "release.approved", "Release approval given"
    RELEASE_REJECTED = "release.rejected", "Release rejected"
    RELEASE_TRANSITIONED = "release.transitioned", "Release changed state"
    STEP_FINISHED = "step.finished", "Step finished"
    APPLICATION_SCALED = "application.scaled", "Application scaled"
    APPLICATION_DECOMMISSIONED = "application.decommissioned", "Application decommissioned"
    OBJECT_CREATED = "object.created", "Configuration object created"
    OBJECT_CHANGED = "object.changed", "Configuration object changed"
    OBJECT_DELETED = "object.deleted", "Configuration object deleted"
    SIGNIN_LOCKED_OUT = "signin.locked_out", "Sign-in locked out"
    SIGNIN_UNLOCKED = "signin.unlocked", "Sign-in unlocked"
    API_TOKEN_ISSUED = "api_token.issued", "API token issued"
    API_TOKEN_REVOKED = "api_token.revoked", "API token revoked"
