"""Celery tasks: thin wrappers that take ids and call one service."""
import logging

from celery import Task, shared_task
from django.core.exceptions import ObjectDoesNotExist
from django.db import InterfaceError, OperationalError, close_old_connections

from paas_site.correlation import correlation_bound
from paas_site.errors import PermanentError, TransientError

from .services import notifications, pipeline
from .services.checkpoints import audit_checkpoint_write
from .services.notifications import budget_alerts_notify, webhook_deliver

logger = logging.getLogger(__name__)
# The database connection broke (server restarted, connection killed, network): transient.
DATABASE_LOST = (OperationalError, InterfaceError)


def retry_on_a_new_connection(task: Task, exc: Exception):
    """Every write is in a transaction that rolled back with the connection: drop it and run the task again."""
    close_old_connections()  # the broken connection is marked unusable; the retry opens a fresh one
    return task.retry(countdown=pipeline.retry_delay(task.request.retries), exc=exc)


@shared_task(bind=True, name="workflows.release_step", acks_late=True, max_retries=None)
def release_step_task(self, release_id: int, step: str, correlation_id: str = "") -> None:
    with correlation_bound(correlation_id):
        try:
            pipeline.step_run(release_id=release_id, step=step, task_id=self.request.id, retries=self.request.retries)
        except pipeline.StepRetry as retry:
            raise self.retry(countdown=retry.countdown, exc=retry.cause) from None
        except ObjectDoesNotExist:
            logger.warning("release %s no longer exists; dropping its %s step", release_id, step)
        except DATABASE_LOST as exc:
            logger.warning("database connection lost during the %s step of release %s: %s", step, release_id, exc)
            raise retry_on_a_new_connection(self, exc) from None


# bounded: the beat's lanes_advance_due starts what a given-up advance left behind
@shared_task(bind=True, name="workflows.lane_advance", acks_late=True, max_retries=8)
def lane_advance_task(self, application_id: int, environment_id: int) -> None:
    try:
        pipeline.lane_advance(application_id=application_id, environment_id=environment_id)
    except ObjectDoesNotExist:
        logger.warning("application %s no longer exists; nothing to advance", application_id)
    except DATABASE_LOST as exc:
        logger.warning("database connection lost advancing lane %s/%s: %s", application_id, environment_id, exc)
        raise retry_on_a_new_connection(self, exc) from None


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


@shared_task(name="workflows.notification_fanout", acks_late=True)
def notification_fanout_task(notification_id: int) -> int:
    """Make a notification's deliveries (once) and hand each to a worker."""
    pending = notifications.notification_fanout(notification_id=notification_id)
    for delivery_id in pending:
        notification_deliver_task.delay(delivery_id)
    return len(pending)


# the attempts are counted in the database (SLIPWAY_NOTIFY_MAX_ATTEMPTS), not by Celery
@shared_task(bind=True, name="workflows.notification_deliver", acks_late=True, max_retries=None)
def notification_deliver_task(self, delivery_id: int) -> str:
    try:
        return notifications.notification_deliver(delivery_id=delivery_id)
    except notifications.DeliveryRetry as retry:
        raise self.retry(countdown=retry.countdown) from None
    except ObjectDoesNotExist:
        logger.warning("notification delivery %s no longer exists", delivery_id)
        return "gone"
    except DATABASE_LOST as exc:
        raise retry_on_a_new_connection(self, exc) from None


@shared_task(name="workflows.notifications_redrive")
def notifications_redrive_task() -> int:
    return notifications.notifications_redrive()


@shared_task(name="workflows.budget_alerts_notify")
def budget_alerts_notify_task() -> int:
    return budget_alerts_notify()


@shared_task(name="workflows.audit_checkpoint_write")
def audit_checkpoint_write_task() -> int | None:
    """The beat's periodic checkpoint; skipped while the chain has not moved since the last one."""
    written = audit_checkpoint_write(only_if_moved=True)
    return written.checkpoint.event_id if written else None
