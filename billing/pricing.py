"""Rating and rounding: pure functions on Decimals, no database.

A sample is priced by the price book in force at its time:

    amount = (cpu_cores × cpu_price + memory_gib × memory_price + exposed × ingress_price) × interval / 3600

computed with one division at the end in a wide decimal context, so results
do not depend on the caller's context and no float is ever involved.
``cost_records_compute`` does the same arithmetic in SQL.
"""
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, localcontext

SECONDS_PER_HOUR = Decimal(3600)
HOURS_PER_MONTH = Decimal(730)  # 365 × 24 / 12: the industry's billing month
GIB = Decimal(2**30)
_WIDE = Context(prec=60)


@dataclass(frozen=True)
class Prices:
    currency: str
    cpu_core_hour: Decimal
    memory_gib_hour: Decimal
    ingress_hour: Decimal = Decimal(0)
    storage_gib_hour: Decimal = Decimal(0)


@dataclass(frozen=True)
class Usage:
    """Requested resources (already × replicas) held for ``seconds``."""

    cpu_cores: Decimal
    memory_gib: Decimal
    seconds: Decimal
    exposed: bool = False


@dataclass(frozen=True)
class Cost:
    core_hours: Decimal
    gib_hours: Decimal
    ingress_hours: Decimal
    amount: Decimal
    currency: str


def rate(usage: Usage, prices: Prices) -> Cost:
    """The exact cost of ``usage`` at ``prices``."""
    with localcontext(_WIDE):
        ingress_seconds = usage.seconds if usage.exposed else Decimal(0)
        amount = (
            usage.cpu_cores * usage.seconds * prices.cpu_core_hour
            + usage.memory_gib * usage.seconds * prices.memory_gib_hour
            + ingress_seconds * prices.ingress_hour
        ) / SECONDS_PER_HOUR
        return Cost(
            core_hours=usage.cpu_cores * usage.seconds / SECONDS_PER_HOUR,
            gib_hours=usage.memory_gib * usage.seconds / SECONDS_PER_HOUR,
            ingress_hours=ingress_seconds / SECONDS_PER_HOUR,
            amount=amount,
            currency=prices.currency,
        )


def monthly_usage(*, cpu_per_replica: Decimal, memory_bytes_per_replica: Decimal, replicas: int, exposed: bool) -> Usage:
    """What ``replicas`` pods of the given requests hold for a 730-hour month."""
    with localcontext(_WIDE):
        return Usage(
            cpu_cores=cpu_per_replica * replicas,
            memory_gib=memory_bytes_per_replica * replicas / GIB,
            seconds=HOURS_PER_MONTH * SECONDS_PER_HOUR,
            exposed=exposed and replicas > 0,
        )


def gib(memory_bytes: Decimal) -> Decimal:
    with localcontext(_WIDE):
        return memory_bytes / GIB


def largest_remainder(amounts: Sequence[Decimal], total_places: int = 2) -> list[Decimal]:
    """Round ``amounts`` to ``total_places`` so they add up exactly to their rounded total.

    Every amount is rounded down first; the units still missing to reach the
    rounded total go one each to the amounts that lost the most (ties to the
    earlier one). Three thirds become 0.34, 0.33, 0.33.
    """
    if not amounts:
        return []
    unit = Decimal(1).scaleb(-total_places)
    with localcontext(_WIDE):
        total = sum(amounts, Decimal(0)).quantize(unit, rounding=ROUND_HALF_UP)
        floors = [amount.quantize(unit, rounding=ROUND_FLOOR) for amount in amounts]
        missing = int((total - sum(floors, Decimal(0))) / unit)
        by_remainder = sorted(range(len(amounts)), key=lambda i: (-(amounts[i] - floors[i]), i))
        for index in by_remainder[:missing]:
            floors[index] += unit
        return floors


def round_money(amount: Decimal, places: int = 2) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
