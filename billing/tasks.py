"""Celery tasks: thin wrappers over the billing services (scheduled by beat)."""
from datetime import date

from celery import shared_task

from . import services


@shared_task(name="billing.usage_meter")
def usage_meter_task() -> dict:
    return services.usage_meter()


@shared_task(name="billing.costs_refresh")
def costs_refresh_task() -> dict:
    return services.costs_refresh()


@shared_task(name="billing.cost_records_compute", acks_late=True)
def cost_records_compute_task(day: str) -> int:
    """Re-rate one day (ISO date), e.g. after a price book was corrected."""
    return services.cost_records_compute(day=date.fromisoformat(day))
