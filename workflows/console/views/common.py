"""What every console page shares: the project switcher, pagination, and turning service errors into messages."""
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from deployments.models import Project
from deployments.selectors import project_list
from paas_site.errors import ApplicationError, ExternalError

PAGE_SIZE = 20
PROJECT_SESSION_KEY = "console_project"


def paginate(request: HttpRequest, rows: QuerySet, per_page: int = PAGE_SIZE) -> Page:
    """One page of ``rows``; a page number out of range gives the last page, garbage the first."""
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


def projects_and_current(request: HttpRequest) -> tuple[list[Project], Project | None]:
    """The user's projects for the switcher, and the chosen one if they still see it (``None``: all of them).

    Read once per request: the page and its view both ask.
    """
    if not hasattr(request, "_console_projects"):
        projects = list(project_list(user=request.user).only("id", "slug", "name"))
        slug = request.session.get(PROJECT_SESSION_KEY)
        request._console_projects = projects, next((project for project in projects if project.slug == slug), None)
    return request._console_projects


def page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """Render a full console page, with the project switcher."""
    projects, current = projects_and_current(request)
    return render(request, template, {"projects": projects, "current_project": current, **context}, status=status)


def safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                              require_https=request.is_secure())
    return target if allowed else default


@require_POST
def project_switch(request: HttpRequest) -> HttpResponse:
    """Remember the chosen project for the pages that list things ("" = all my projects)."""
    slug = request.POST.get("project", "")
    if slug and not project_list(user=request.user).filter(slug=slug).exists():
        messages.error(request, f"You are not a member of a project {slug!r}.")
    elif slug:
        request.session[PROJECT_SESSION_KEY] = slug
    else:
        request.session.pop(PROJECT_SESSION_KEY, None)
    return redirect(safe_next(request, "console:dashboard"))


def perform(request: HttpRequest, action: Callable[[], Any], success: Callable[[Any], str]) -> Any | None:
    """Run a service call; report its outcome as a message. Returns its result, or ``None`` when it refused."""
    try:
        result = action()
    except (ApplicationError, ExternalError) as exc:
        messages.error(request, exc.message)
        return None
    messages.success(request, success(result))
    return result
