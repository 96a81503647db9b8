"""Celery tasks: thin wrappers that take ids and call one service."""
import logging

from celery import shared_task
from django.core.exceptions import ObjectDoesNotExist

from paas_site.correlation import correlation_bound
from paas_site.errors import PermanentError, TransientError

from .services import pipeline
from .services.notifications import budget_alerts_notify, webhook_deliver

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="workflows.release_step", acks_late=True, max_retries=None)
def release_step_task(self, release_id: int, step: str, correlation_id: str = "") -> None:
    with correlation_bound(correlation_id):
        try:
            pipeline.step_run(release_id=release_id, step=step, task_id=self.request.id, retries=self.request.retries)
        except pipeline.StepRetry as retry:
            raise self.retry(countdown=retry.countdown, exc=retry.cause) from None
        except ObjectDoesNotExist:
            logger.warning("release %s no longer exists; dropping its %s step", release_id, step)


@shared_task(name="workflows.lane_advance", acks_late=True)
def lane_advance_task(application_id: int, environment_id: int) -> None:
    try:
        pipeline.lane_advance(application_id=application_id, environment_id=environment_id)
    except ObjectDoesNotExist:
        logger.warning("application %s no longer exists; nothing to advance", application_id)


@shared_task(name="workflows.lanes_advance_due")
def lanes_advance_due_task() -> int:
    return pipeline.lanes_advance_due()


@shared_task(name="workflows.steps_reap")
def steps_reap_task() -> int:
    return pipeline.steps_reap()


@shared_task(bind=True, name="workflows.webhook_deliver", acks_late=True, max_retries=8)
def webhook_deliver_task(self, webhook_id: int, payload: dict) -> None:
    try:
        webhook_deliver(webhook_id=webhook_id, payload=payload)
    except TransientError as exc:
        raise self.retry(countdown=min(600, 5 * 2**self.request.retries), exc=exc) from None
    except PermanentError as exc:
        logger.warning("webhook %s not delivered: %s", webhook_id, exc)


@shared_task(name="workflows.budget_alerts_notify")
def budget_alerts_notify_task() -> int:
    return budget_alerts_notify()
