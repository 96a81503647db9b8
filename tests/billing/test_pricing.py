"""The pure side of billing: rating formulas, rounding, report shapes. No database."""
from datetime import date
from decimal import Decimal

import pytest

from billing.pricing import Prices, Usage, largest_remainder, monthly_usage, rate
from billing.reports import ProjectInfo, RatedRow, report_build, report_csv_rows

D = Decimal
PRICES = Prices(currency="EUR", cpu_core_hour=D("0.04"), memory_gib_hour=D("0.005"), ingress_hour=D("0.01"))


def test_rate_prices_cores_memory_and_ingress_exactly():
    usage = Usage(cpu_cores=D("0.5"), memory_gib=D("1.5"), seconds=D(1800), exposed=True)

    cost = rate(usage, PRICES)

    assert cost.core_hours == D("0.25")
    assert cost.gib_hours == D("0.75")
    assert cost.ingress_hours == D("0.5")
    # 0.25 × 0.04 + 0.75 × 0.005 + 0.5 × 0.01
    assert cost.amount == D("0.01875") and cost.currency == "EUR"


def test_ingress_is_free_when_not_exposed():
    cost = rate(Usage(cpu_cores=D(0), memory_gib=D(0), seconds=D(3600), exposed=False), PRICES)

    assert cost.amount == 0 and cost.ingress_hours == 0


def test_a_five_minute_sample_keeps_every_digit():
    # 0.1 core for 300 s is 1/120 core-hour: not a terminating decimal, so no early rounding must creep in
    costs = [rate(Usage(cpu_cores=D("0.1"), memory_gib=D(0), seconds=D(300)), PRICES).amount for _ in range(120)]

    assert sum(costs).quantize(D("1e-20")) == D("0.04")


def test_monthly_usage_is_730_hours_of_replicas_times_requests():
    usage = monthly_usage(cpu_per_replica=D("0.25"), memory_bytes_per_replica=D(512 * 2**20), replicas=4, exposed=False)

    cost = rate(usage, PRICES)

    assert usage.cpu_cores == D(1) and usage.memory_gib == D(2)
    assert cost.amount == D(730) * (D("0.04") + 2 * D("0.005"))


@pytest.mark.parametrize(
    ("amounts", "places", "expected"),
    [
        ([D(1) / 3] * 3, 2, [D("0.34"), D("0.33"), D("0.33")]),
        ([D("0.005")] * 3, 2, [D("0.01"), D("0.01"), D("0.00")]),
        ([D("1.004"), D("2.004"), D("3.004")], 2, [D("1.01"), D("2.00"), D("3.00")]),
        ([D("10.1234"), D("0")], 3, [D("10.123"), D("0.000")]),
        ([], 2, []),
    ],
)
def test_largest_remainder_lines_add_up_to_the_rounded_total(amounts, places, expected):
    rounded = largest_remainder(amounts, total_places=places)

    assert rounded == expected
    assert sum(rounded, D(0)) == sum(amounts, D(0)).quantize(D(1).scaleb(-places), rounding="ROUND_HALF_UP")


def test_report_lines_and_subtotals_add_up_and_projects_without_usage_are_zero():
    projects = [ProjectInfo(1, "shop", "Shop", "CC-1"), ProjectInfo(2, "idle", "Idle", "")]
    third = D(1) / 3
    rows = [RatedRow(1, "dev", app, D("1"), D("2"), third) for app in ("a", "b", "c")]

    report = report_build(start=date(2026, 3, 1), end=date(2026, 3, 31), currency="EUR", projects=projects, rows=rows)

    idle, shop = report.projects
    assert (idle.project.slug, idle.amount, idle.environments) == ("idle", D("0.00"), [])
    assert [a.amount for a in shop.environments[0].applications] == [D("0.34"), D("0.33"), D("0.33")]
    assert shop.amount == shop.environments[0].amount == report.amount == D("1.00")
    csv_rows = report_csv_rows(report)
    assert csv_rows[0][:3] == ["start", "end", "project"]
    assert sum(D(row[8]) for row in csv_rows[1:-1]) == D(csv_rows[-1][8])
