"""Outgoing webhooks on release events: signed, retried, never blocking the pipeline.

Deliveries go through the guarded client (``paas_site.outbound``); redirects are not followed, so the
signature only ever reaches the webhook's own host.
"""
import hashlib
import hmac
import json

import requests
from django.db import transaction
from django.utils import timezone

from paas_site.errors import PermanentError, TransientError
from paas_site.outbound import GuardedSession, OutboundRefused, unreachable

from ..models import ProjectWebhook, Release

SIGNATURE_HEADER = "X-Slipway-Signature"
TIMEOUT = 10


def release_notify(*, release: Release, event: str) -> None:
    """After the transaction commits, deliver ``event`` to the project's subscribed webhooks."""
    payload = {
        "event": event,
        "release": {
            "id": release.id, "state": release.state, "project": release.application.project.slug,
            "application": release.application.name, "environment": release.environment.name,
            "version": release.version, "image": release.image, "failure_reason": release.failure_reason,
        },
        "sent_at": timezone.now().isoformat(),
    }
    hooks = [h.id for h in ProjectWebhook.objects.filter(project_id=release.application.project_id, active=True)
             if event in h.events]
    if hooks:
        from ..tasks import webhook_deliver_task

        transaction.on_commit(lambda: [webhook_deliver_task.delay(hook, payload) for hook in hooks])


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


def budget_alerts_notify() -> int:
    """Deliver budget alerts that billing raised (billing cannot reach project webhooks itself)."""
    from billing import selectors as billing_selectors
    from billing import services as billing_services

    from ..tasks import webhook_deliver_task

    alerts = list(billing_selectors.budget_alerts_pending_notification())
    for alert in alerts:
        payload = billing_selectors.budget_alert_payload(alert)
        hooks = [hook.id for hook in ProjectWebhook.objects.filter(project_id=alert.budget.project_id, active=True)
                 if payload["event"] in hook.events]
        with transaction.atomic():  # marked and enqueued together: each alert is sent once
            billing_services.budget_alert_mark_notified(alert_id=alert.id)
            transaction.on_commit(lambda hooks=hooks, payload=payload: [
                webhook_deliver_task.delay(hook, payload) for hook in hooks
            ])
    return len(alerts)
