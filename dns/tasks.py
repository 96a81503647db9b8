"""Celery tasks: thin wrappers that call one service."""
from celery import shared_task

from .services import dns_reconcile


@shared_task(name="dns.reconcile")
def dns_reconcile_task() -> dict[str, int]:
    return dns_reconcile()
