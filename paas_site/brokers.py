"""What each broker needs for ``acks_late`` redelivery to be correct: Redis or RabbitMQ, chosen by the URL.

Both keep every message until the task that took it returns (``acks_late``, one at a time per worker
process: ``worker_prefetch_multiplier = 1``); a worker that dies leaves its message unacknowledged.

- **RabbitMQ** (``amqp://``, ``amqps://``, ``pyamqp://``) gives an unacknowledged message back as soon as
  the connection of the worker holding it closes. Queues are **quorum queues** (replicated, durable;
  Celery then uses per-consumer QoS and RabbitMQ's native delayed delivery for countdowns, which needs a
  topic exchange), and every publish waits for the broker's confirm (``confirm_publish``), so a send that
  returned is on disk. RabbitMQ's ``consumer_timeout`` (30 minutes by default) closes the channel of a
  consumer holding a message longer: raise it above ``SLIPWAY_RELEASE_MAX_SECONDS`` (README, *Broker*).
- **Redis** gives an unacknowledged message back only after ``visibility_timeout``, to whichever worker
  asks next, even while its first worker still runs it; so it must exceed the longest task and the longest
  countdown. A crash without an fsynced append-only file loses what was queued.

Either way the step leases (``workflows/services/leases.py``) make a duplicate delivery harmless.
"""
import os

from kombu import Exchange, Queue

AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


def is_rabbitmq(url: str) -> bool:
    return url.startswith(AMQP_SCHEMES)


def celery_broker_settings(url: str) -> dict:
    """Celery's broker settings (lower-case names, without the ``CELERY_`` prefix) for the broker at ``url``."""
    if is_rabbitmq(url):
        return {
            "broker_transport_options": {"confirm_publish": True},
            "task_default_queue_type": "quorum",
            "task_default_exchange_type": "topic",  # native delayed delivery routes countdowns through topics
            "task_create_missing_queue_type": "quorum",
            "task_create_missing_queue_exchange_type": "topic",
        }
    # Must exceed the longest task and the longest retry countdown, or Redis redelivers a message that is
    # still being worked on (harmless thanks to the leases, but it costs a claim).
    return {"broker_transport_options": {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))}}


def task_queue(name: str, url: str) -> Queue:
    """The declaration of queue ``name`` on the broker at ``url``, as workers configured for it declare it."""
    if is_rabbitmq(url):
        return Queue(name, Exchange(name, "topic"), name, queue_arguments={"x-queue-type": "quorum"})
    return Queue(name, Exchange(name), name)
