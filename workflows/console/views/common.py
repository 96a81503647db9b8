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


def current_project(request: HttpRequest, projects: list[Project]) -> Project | None:
    """The project chosen in the switcher, if the user still sees it (``None``: all their projects)."""
    slug = request.session.get(PROJECT_SESSION_KEY)
    return next((project for project in projects if project.slug == slug), None)


def page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """Render a full console page: the switcher needs the user's projects and the chosen one."""
    projects = context.pop("projects", None) or list(project_list(user=request.user).only("id", "slug", "name"))
    context = {"projects": projects, "current_project": current_project(request, projects), **context}
    return render(request, template, context, status=status)


def projects_and_current(request: HttpRequest) -> tuple[list[Project], Project | None]:
    projects = list(project_list(user=request.user).only("id", "slug", "name"))
    return projects, current_project(request, projects)


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
