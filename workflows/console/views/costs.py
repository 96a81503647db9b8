"""The monthly cost report: per project and per day, as tables and SVG charts, and as CSV."""
import dataclasses
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from billing.reports import Report, report_csv_rows
from billing.selectors import cost_per_day, monthly_report
from deployments.selectors import project_list
from paas_site.errors import ApplicationError
from paas_site.spreadsheet import csv_write

from ..charts import bar_chart, top_with_rest
from ..forms import CostFilterForm
from .common import page, projects_and_current


def filtered_report(request: HttpRequest) -> tuple[CostFilterForm, Report | None, str]:
    """The report the filter asks for (month, maybe one project), or why there is none."""
    query = request.GET.copy()
    query.setdefault("month", timezone.localdate().strftime("%Y-%m"))
    _, switched_to = projects_and_current(request)
    query.setdefault("project", switched_to.slug if switched_to else "")
    form = CostFilterForm(query, projects=project_list(user=request.user))
    if not form.is_valid():
        return form, None, ""
    project = form.cleaned_data["project"]
    try:
        report = monthly_report(user=request.user, month=form.cleaned_data["month"])
    except ApplicationError as exc:
        return form, None, exc.message
    if project is not None:
        lines = [line for line in report.projects if line.project.id == project.id]
        report = dataclasses.replace(report, projects=lines, amount=sum((line.amount for line in lines), Decimal("0.00")))
    return form, report, ""


@login_required
def cost_report(request: HttpRequest) -> HttpResponse:
    form, report, error = filtered_report(request)
    if report is None:
        return page(request, "console/costs.html", {"form": form, "error": error}, status=400)
    project = form.cleaned_data["project"]
    days = cost_per_day(user=request.user, start=report.start, end=report.end,
                        project_ids=[project.id] if project else None)
    return page(request, "console/costs.html", {
        "form": form, "report": report,
        "project_chart": bar_chart(top_with_rest([(line.project.slug, line.amount) for line in report.projects])),
        "day_chart": bar_chart([(f"{day:%d}", amount) for day, amount in days]),
        "csv_query": form.data.urlencode(),
    })


@login_required
def cost_report_csv(request: HttpRequest) -> HttpResponse:
    form, report, error = filtered_report(request)
    if report is None:
        return page(request, "console/costs.html", {"form": form, "error": error}, status=400)
    project = form.cleaned_data["project"]
    name = f"slipway-costs-{report.start:%Y-%m}{f'-{project.slug}' if project else ''}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    csv_write(response, report_csv_rows(report))
    return response
