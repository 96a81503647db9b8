"""Telling people: notifications (email, chat robots, the console) and signed project webhooks on release and
budget events. Recorded with the change, delivered by workers, never blocking or failing the change.

- An event is a ``Notification`` row written in the transaction of the change, in a savepoint: a rolled-back
  transition sends nothing, and a notification that cannot be recorded leaves the change alone (logged).
  After the commit a worker fans it out into deliveries.
- Who: awaiting approval → the approvers who may decide it now (``selectors.release_deciders``: not the
  requester, not whoever already decided); succeeded, failed, rolled back, rejected → the requester;
  budget alerts → the project's maintainers and finance. Each chooses per event kind the media that reach
  them (``DEFAULT_MEDIA`` otherwise). The project's chat channels subscribed to the event get one message,
  mentioning the recipients who chose chat and gave their chat id.
- A delivery is unique per (notification, recipient, medium) and per (notification, channel); it is locked
  while it is sent and never sent again once delivered. Transient failures retry with exponential backoff
  up to ``SLIPWAY_NOTIFY_MAX_ATTEMPTS``; every attempt is a ``DeliveryAttempt`` row (outcome, error). The
  one window left is a worker dying after the receiver accepted and before the row is saved: that
  delivery is sent again (at least once there, as with any sender that is not the receiver).
- Chat goes through the guarded client (``workflows.chat``), email through the guarded SMTP backend
  (``paas_site.mail``), webhooks through the guarded client without redirects.
"""
import hashlib
import hmac
import json
import logging
import smtplib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import requests
import urllib3
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from deployments.choices import FINANCE_GROUP, Role
from deployments.permissions import Action, project_may
from paas_site.errors import PermanentError, TransientError
from paas_site.outbound import GuardedSession, OutboundRefused, unreachable

from .. import chat
from ..choices import AttemptOutcome as Outcome
from ..choices import DeliveryStatus, Medium, NotificationEvent, ReleaseState
from ..models import (
    DeliveryAttempt,
    Notification,
    NotificationChannel,
    NotificationDelivery,
    NotificationProfile,
    ProjectWebhook,
    Release,
)
from ..selectors import release_deciders
from .notification_settings import PROFILE_IDS

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Slipway-Signature"
TIMEOUT = 10
E, M = NotificationEvent, Medium
# What reaches a user who has not chosen: approvers hear of what awaits them by every medium.
DEFAULT_MEDIA: dict[str, list[str]] = {
    E.AWAITING_APPROVAL: [M.EMAIL, M.CHAT, M.CONSOLE],
    E.SUCCEEDED: [M.CHAT, M.CONSOLE],
    E.FAILED: [M.EMAIL, M.CHAT, M.CONSOLE],
    E.ROLLED_BACK: [M.EMAIL, M.CHAT, M.CONSOLE],
    E.REJECTED: [M.EMAIL, M.CHAT, M.CONSOLE],
    E.BUDGET_THRESHOLD_REACHED: [M.EMAIL, M.CONSOLE],
}


class DeliveryRetry(Exception):
    """A delivery failed transiently: its task runs again after ``countdown`` seconds."""

    def __init__(self, countdown: float):
        super().__init__(f"retry in {countdown}s")
        self.countdown = countdown


def media_preferred(profile: NotificationProfile | None, event: str) -> list[str]:
    if profile is not None and event in profile.preferences:
        return profile.preferences[event]
    return DEFAULT_MEDIA[event]


def preferences_of(user) -> dict:
    """A user's preferences as they apply (their choice, else the default, for every event kind) and chat ids."""
    profile = NotificationProfile.objects.filter(user_id=user.id).first()
    return {"preferences": {event: media_preferred(profile, event) for event in NotificationEvent.values},
            "defaults": DEFAULT_MEDIA, **{name: getattr(profile, name, "") for name in PROFILE_IDS}}


def public_url(path: str) -> str:
    return settings.SLIPWAY_PUBLIC_URL.rstrip("/") + path


# -- recording events (inside the change's transaction) ------------------------------------
def release_notify(*, release: Release, event: str) -> None:
    """After the transaction commits, tell the people and channels ``event`` concerns, and the webhooks."""
    payload = {
        "event": event,
        "release": {
            "id": release.id, "state": release.state, "project": release.application.project.slug,
            "application": release.application.name, "environment": release.environment.name,
            "version": release.version, "image": release.image, "failure_reason": release.failure_reason,
        },
        "sent_at": timezone.now().isoformat(),
    }
    _webhooks_enqueue(release.application.project_id, payload)
    notification_record(event=event, project_id=release.application.project_id, release=release,
                        message=lambda: release_message(release, event))


def notification_record(*, event: str, project_id: int, message: Callable[[], dict], **about: Any) -> None:
    """Record the event in a savepoint and fan it out after the commit; a failure here is logged, never raised."""
    try:
        with transaction.atomic():
            notification = Notification.objects.create(event=event, project_id=project_id, message=message(), **about)
    except Exception:
        logger.exception("the %s notification of project %s could not be recorded", event, project_id)
        return
    notification_id = notification.id
    transaction.on_commit(lambda: _tasks().notification_fanout_task.delay(notification_id), robust=True)


def release_message(release: Release, event: str) -> dict[str, Any]:
    """Subject, lines and links of a release event, frozen when it happens."""
    application, environment = release.application, release.environment
    what = f"release #{release.id}: {application.project.slug}/{application.name} {release.version} → {environment.name}"
    filer = release.requested_by.get_username() if release.requested_by else "CI"
    lines = [f"Filed by {filer}" + (f" via {release.requested_via}" if release.requested_via != "api" else "") + "."]
    links = [{"label": "Open the release", "url": public_url(reverse("console:release-detail", args=[release.id]))}]
    if event == E.AWAITING_APPROVAL:
        subject = f"Approval needed: {what}"
        lines.append(f"{environment.required_approvals} approval(s) required; fingerprint {release.fingerprint_short}.")
        links.append({"label": "Approval queue", "url": public_url(reverse("console:approvals"))})
    elif event == E.REJECTED:
        subject = f"Rejected: {what}"
        rejection = release.approvals.filter(decision="reject").select_related("approver").last()
        if rejection:
            lines.append(f"Rejected by {rejection.approver.get_username()}: {rejection.comment or 'no comment'}")
    elif event == E.FAILED:
        subject = f"Failed: {what}"
        lines.append(f"{release.failed_step or 'a step'} failed: {release.failure_reason}")
    elif event == E.ROLLED_BACK:
        subject = f"Rolled back: {what}"
        lines.append(f"It failed ({release.failure_reason or 'see the release'}) and was rolled back.")
    else:
        subject = f"Succeeded: {what}"
    return {"subject": subject[:200], "lines": lines, "links": links}


def budget_message(payload: dict[str, Any]) -> dict[str, Any]:
    budget = payload["budget"]
    subject = (f"Budget alert: {budget['project']} spent {payload['spent']} {budget['currency']} of "
               f"{budget['amount']} in {budget['month']} ({payload['threshold']} %)")
    costs = public_url(reverse("console:costs") + f"?month={budget['month']}&project={budget['project']}")
    return {"subject": subject, "lines": [f"The {payload['threshold']} % threshold of the budget was reached."],
            "links": [{"label": "Cost report", "url": costs}]}


def budget_alerts_notify() -> int:
    """Tell of budget alerts that billing raised (billing cannot reach webhooks or people itself); each once."""
    from billing import selectors as billing_selectors
    from billing import services as billing_services

    alerts = list(billing_selectors.budget_alerts_pending_notification())
    for alert in alerts:
        payload = billing_selectors.budget_alert_payload(alert)
        with transaction.atomic():  # marked, recorded and enqueued together: each alert is told once
            billing_services.budget_alert_mark_notified(alert_id=alert.id)
            _webhooks_enqueue(alert.budget.project_id, payload)
            notification_record(event=E.BUDGET_THRESHOLD_REACHED, project_id=alert.budget.project_id,
                                budget_alert=alert, message=lambda payload=payload: budget_message(payload))
    return len(alerts)


# -- fan-out: who gets what ----------------------------------------------------------------
def notification_recipients(notification: Notification) -> list:
    release, event = notification.release, notification.event
    users = get_user_model().objects.filter(is_active=True)
    if event == E.AWAITING_APPROVAL:
        return release_deciders(release) if release.state == ReleaseState.REQUESTED else []
    if event == E.BUDGET_THRESHOLD_REACHED:
        return list(users.filter(
            Q(memberships__project_id=notification.project_id, memberships__role=Role.MAINTAINER)
            | Q(groups__name=FINANCE_GROUP)).distinct().order_by("username"))
    requester = release.requested_by
    if requester is None or not project_may(requester, Action.VIEW, notification.project_id):
        return []
    return [requester]


def notification_fanout(*, notification_id: int) -> list[int]:
    """Make a notification's deliveries, once; return the ids a worker must send (console ones are done)."""
    with transaction.atomic():
        notification = Notification.objects.select_for_update(of=("self",)).select_related(
            "release__application__project", "release__environment", "release__requested_by").get(id=notification_id)
        if notification.fanned_out_at is not None:
            return []
        recipients = notification_recipients(notification)
        profiles = {profile.user_id: profile for profile in
                    NotificationProfile.objects.filter(user__in=recipients).select_related("user")}
        rows, chatting, now = [], [], timezone.now()
        for user in recipients:
            media = media_preferred(profiles.get(user.id), notification.event)
            if M.EMAIL in media and user.email and settings.EMAIL_HOST:
                rows.append(NotificationDelivery(notification=notification, recipient=user, medium=M.EMAIL,
                                                 target=f"{user.get_username()} <{user.email}>"))
            if M.CONSOLE in media:
                rows.append(NotificationDelivery(notification=notification, recipient=user, medium=M.CONSOLE,
                                                 target=user.get_username(), status=DeliveryStatus.DELIVERED,
                                                 delivered_at=now))
            if M.CHAT in media and user.id in profiles:
                chatting.append(profiles[user.id])
        for channel in NotificationChannel.objects.filter(project_id=notification.project_id, active=True):
            if notification.event in channel.events:
                rows.append(NotificationDelivery(
                    notification=notification, channel=channel, medium=channel.kind, target=f"channel {channel.name}",
                    mentions=[profile.user.get_username() for profile in chatting if profile.chat_id(channel.kind)]))
        # the unique constraints make a second fan-out (whatever let it through) add nothing
        NotificationDelivery.objects.bulk_create(rows, ignore_conflicts=True)
        notification.fanned_out_at = timezone.now()
        notification.save(update_fields=["fanned_out_at"])
        return list(notification.deliveries.filter(status=DeliveryStatus.PENDING).values_list("id", flat=True))


# -- delivery ------------------------------------------------------------------------------
def notification_deliver(*, delivery_id: int) -> str:
    """Send one delivery unless it was sent already; record the attempt. ``DeliveryRetry`` asks for a retry."""
    with transaction.atomic():
        delivery = NotificationDelivery.objects.select_for_update(of=("self",)).select_related(
            "notification", "recipient", "channel").get(id=delivery_id)
        if delivery.status != DeliveryStatus.PENDING:
            return delivery.status
        started = timezone.now()
        transient, error = False, ""
        try:
            (_email_send if delivery.medium == M.EMAIL else _chat_send)(delivery)
        except TransientError as exc:
            transient, error = True, exc.message
        except PermanentError as exc:
            error = exc.message
        except Exception:
            logger.exception("notification delivery %s failed unexpectedly", delivery.id)
            transient, error = True, "unexpected error (see the server log)"
        delivery.attempts += 1
        retry = bool(error) and transient and delivery.attempts < settings.SLIPWAY_NOTIFY_MAX_ATTEMPTS
        outcome = Outcome.DELIVERED if not error else Outcome.RETRYING if retry else Outcome.FAILED
        countdown = min(settings.SLIPWAY_NOTIFY_RETRY_MAX_SECONDS,
                        settings.SLIPWAY_NOTIFY_RETRY_BASE_SECONDS * 2 ** (delivery.attempts - 1))
        delivery.status = {Outcome.DELIVERED: DeliveryStatus.DELIVERED, Outcome.RETRYING: DeliveryStatus.PENDING,
                           Outcome.FAILED: DeliveryStatus.FAILED}[outcome]
        delivery.last_error = error
        delivery.delivered_at = timezone.now() if outcome == Outcome.DELIVERED else None
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=countdown)
        delivery.save()
        DeliveryAttempt.objects.create(delivery=delivery, number=delivery.attempts, outcome=outcome, error=error,
                                       started_at=started, finished_at=timezone.now())
    if retry:
        raise DeliveryRetry(countdown)
    return delivery.status


def _email_send(delivery: NotificationDelivery) -> None:
    message, recipient = delivery.notification.message, delivery.recipient
    context = {**message, "recipient": recipient}
    subject = " ".join(message["subject"].split())  # one header line, whatever the names held
    email = EmailMultiAlternatives(
        subject=subject, body=render_to_string("notifications/email.txt", context), to=[recipient.email],
        headers={"Auto-Submitted": "auto-generated", "X-Slipway-Notification": str(delivery.notification_id)},
    )
    email.attach_alternative(render_to_string("notifications/email.html", context), "text/html")
    relay = f"mail relay {settings.EMAIL_HOST}"
    try:
        email.send()
    except OutboundRefused as exc:
        raise OutboundRefused(f"{relay}: {exc.message}") from None
    except smtplib.SMTPResponseException as exc:  # 4xx: try later; 5xx: refused for good
        error = TransientError if 400 <= exc.smtp_code < 500 else PermanentError
        raise error(f"{relay} answered {exc.smtp_code}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = sorted({code for code, _ in exc.recipients.values()})
        error = TransientError if all(400 <= code < 500 for code in codes) else PermanentError
        raise error(f"{relay} refused the recipient ({', '.join(map(str, codes))})") from None
    except (smtplib.SMTPException, OSError, urllib3.exceptions.HTTPError) as exc:
        raise unreachable(relay, exc) from None


def _chat_send(delivery: NotificationDelivery) -> None:
    channel = delivery.channel
    if channel is None or not channel.active:
        raise PermanentError("the channel was deleted or switched off before the message was sent")
    profiles = NotificationProfile.objects.filter(user__username__in=delivery.mentions).select_related("user")
    mentions = [profile.chat_id(channel.kind) for profile in profiles if profile.chat_id(channel.kind)]
    message = delivery.notification.message
    chat.chat_send(channel.kind, channel.url, channel.secret, chat.ChatMessage(
        subject=message["subject"], lines=message["lines"],
        links=[(link["label"], link["url"]) for link in message["links"]], mentions=mentions))


def notifications_redrive() -> int:
    """The beat's safety net: fan out what no worker fanned out, re-send what a lost retry left pending."""
    stale = timezone.now() - timedelta(seconds=settings.SLIPWAY_NOTIFY_REDRIVE_AFTER_SECONDS)
    tasks = _tasks()
    notifications = list(Notification.objects.filter(fanned_out_at__isnull=True, created_at__lt=stale)
                         .values_list("id", flat=True)[:500])
    deliveries = list(NotificationDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lt=stale)
                      .values_list("id", flat=True)[:500])
    for notification_id in notifications:
        tasks.notification_fanout_task.delay(notification_id)
    for delivery_id in deliveries:
        tasks.notification_deliver_task.delay(delivery_id)
    return len(notifications) + len(deliveries)


# -- project webhooks (signed JSON, for machines) -------------------------------------------
def _webhooks_enqueue(project_id: int, payload: dict) -> None:
    hooks = [hook.id for hook in ProjectWebhook.objects.filter(project_id=project_id, active=True)
             if payload["event"] in hook.events]
    if hooks:
        transaction.on_commit(lambda: [_tasks().webhook_deliver_task.delay(hook, payload) for hook in hooks],
                              robust=True)  # a broker that is down must not fail the committed change


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_deliver(*, webhook_id: int, payload: dict) -> int:
    """POST one signed notification; ``TransientError`` asks the task to retry."""
    hook = ProjectWebhook.objects.get(id=webhook_id)
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json", SIGNATURE_HEADER: signature(hook.secret, body),
        "User-Agent": "Slipway-Webhook/1",
    }
    try:
        with GuardedSession() as session:  # a redirect is not followed: the signature stays with the hook's host
            with session.post(hook.url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False,
                              stream=True) as response:
                status = response.status_code
    except OutboundRefused as exc:
        raise OutboundRefused(f"webhook {hook.url}: {exc.message}") from None
    except requests.RequestException as exc:
        raise unreachable(f"webhook {hook.url}", exc) from None
    if status >= 500 or status == 429:
        raise TransientError(f"webhook {hook.url} answered HTTP {status}")
    if status >= 300:
        raise PermanentError(f"webhook {hook.url} refused the notification: HTTP {status}"
                             + (" (a redirect, not followed)" if status < 400 else ""))
    return status


def _tasks():
    from .. import tasks  # tasks import the services; import them late to avoid a cycle

    return tasks

