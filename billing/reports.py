"""Cost reports as plain data: building, rounding and rendering them needs no database.

Report lines are rounded with the largest-remainder method against the
rounded grand total, and every subtotal is the sum of its rounded lines, so
each level adds up exactly — in the JSON and in the CSV alike.
"""
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from .pricing import largest_remainder

MONEY_PLACES = 2
QUANTITY_PLACES = 3
ZERO = Decimal(0)


@dataclass(frozen=True)
class ProjectInfo:
    id: int
    slug: str
    name: str
    cost_center: str


@dataclass(frozen=True)
class RatedRow:
    """Exact sums of cost records of one project × environment × application."""

    project_id: int
    environment: str
    application: str
    core_hours: Decimal
    gib_hours: Decimal
    amount: Decimal


@dataclass
class ApplicationLine:
    application: str
    core_hours: Decimal
    gib_hours: Decimal
    amount: Decimal


@dataclass
class EnvironmentLine:
    environment: str
    amount: Decimal = ZERO
    applications: list[ApplicationLine] = field(default_factory=list)


@dataclass
class ProjectLine:
    project: ProjectInfo
    amount: Decimal = ZERO
    environments: list[EnvironmentLine] = field(default_factory=list)


@dataclass
class Report:
    start: date
    end: date
    currency: str | None
    amount: Decimal
    projects: list[ProjectLine]
    metering_gaps: dict[str, int] = field(default_factory=dict)  # cluster name → metering runs without data
    demo_data: bool = False  # some usage of the period was made up by the demo, not metered


def report_build(
    *, start: date, end: date, currency: str | None, projects: Sequence[ProjectInfo], rows: Sequence[RatedRow],
    metering_gaps: dict[str, int] | None = None, demo_data: bool = False,
) -> Report:
    """Every project of ``projects`` appears, at zero when it has no rows."""
    ordered = sorted(rows, key=lambda r: (r.project_id, r.environment, r.application))
    amounts = largest_remainder([r.amount for r in ordered], MONEY_PLACES)
    core_hours = largest_remainder([r.core_hours for r in ordered], QUANTITY_PLACES)
    gib_hours = largest_remainder([r.gib_hours for r in ordered], QUANTITY_PLACES)

    lines = {p.id: ProjectLine(project=p, amount=Decimal("0.00")) for p in projects}
    for row, amount, cores, gibs in zip(ordered, amounts, core_hours, gib_hours, strict=True):
        project_line = lines[row.project_id]
        if not project_line.environments or project_line.environments[-1].environment != row.environment:
            project_line.environments.append(EnvironmentLine(environment=row.environment, amount=Decimal("0.00")))
        environment_line = project_line.environments[-1]
        environment_line.applications.append(
            ApplicationLine(application=row.application, core_hours=cores, gib_hours=gibs, amount=amount)
        )
        environment_line.amount += amount
        project_line.amount += amount
    project_lines = sorted(lines.values(), key=lambda line: line.project.slug)
    total = sum((line.amount for line in project_lines), Decimal("0.00"))
    return Report(
        start=start, end=end, currency=currency, amount=total, projects=project_lines, metering_gaps=metering_gaps or {},
        demo_data=demo_data,
    )


def report_as_dict(report: Report) -> dict[str, Any]:
    """JSON-safe: decimals as strings, never floats."""
    return {
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "currency": report.currency,
        "amount": str(report.amount),
        "metering_gaps": [{"cluster": name, "runs": runs} for name, runs in sorted(report.metering_gaps.items())],
        "demo_data": report.demo_data,
        "projects": [
            {
                "project": line.project.slug,
                "name": line.project.name,
                "cost_center": line.project.cost_center,
                "amount": str(line.amount),
                "environments": [
                    {
                        "environment": env.environment,
                        "amount": str(env.amount),
                        "applications": [
                            {
                                "application": app.application,
                                "core_hours": str(app.core_hours),
                                "gib_hours": str(app.gib_hours),
                                "amount": str(app.amount),
                            }
                            for app in env.applications
                        ],
                    }
                    for env in line.environments
                ],
            }
            for line in report.projects
        ],
    }


CSV_HEADER = ["start", "end", "project", "cost_center", "environment", "application", "core_hours", "gib_hours",
              "amount", "currency"]
TOTAL_LABEL = "TOTAL"


def report_csv_rows(report: Report) -> list[list[str]]:
    """A header, one row per project × environment × application (one zero row for a project without usage), a total."""
    period = [report.start.isoformat(), report.end.isoformat()]
    currency = report.currency or ""
    zero_quantity = str(Decimal(0).scaleb(-QUANTITY_PLACES))
    rows = [CSV_HEADER]
    total_cores = total_gibs = ZERO
    for line in report.projects:
        project = [line.project.slug, line.project.cost_center]
        if not line.environments:
            rows.append([*period, *project, "", "", zero_quantity, zero_quantity, str(line.amount), currency])
        for env in line.environments:
            for app in env.applications:
                rows.append([*period, *project, env.environment, app.application, str(app.core_hours), str(app.gib_hours),
                             str(app.amount), currency])
                total_cores += app.core_hours
                total_gibs += app.gib_hours
    rows.append([*period, TOTAL_LABEL, "", "", "", str(total_cores.quantize(Decimal(zero_quantity))),
                 str(total_gibs.quantize(Decimal(zero_quantity))), str(report.amount), currency])
    return rows
