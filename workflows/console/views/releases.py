"""Releases in the console: the list, the form, the live timeline, the approver queue, and the action buttons.

Every view reads through the selectors (what the user may see; anything else
is 404) and writes through the services (which decide what the user may do).
"""
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from deployments.models import Application
from deployments.permissions import Action, projects_where
from deployments.selectors import application_list
from deployments.services import lane_replicas, revision_live
from paas_site.errors import ApplicationError

from ... import services
from ...admin import config_changes, live_config
from ...choices import ReleaseState
from ...models import Release
from ...permissions import release_actions
from ...selectors import audit_event_list, release_list, releases_awaiting_decision
from ...services.snapshots import release_application_changes
from ...timeline import format_duration, is_final, release_progress
from ..forms import CommentForm, ConfigFileFormSet, ReleaseForm, RollbackForm, attach_service_error
from .common import page, paginate, perform, projects_and_current


def visible_release(request: HttpRequest, release_id: int) -> Release:
    release = release_list(user=request.user).filter(id=release_id).first()
    if release is None:
        raise Http404(f"No release #{release_id} visible to you.")
    return release


# -- lists ------------------------------------------------------------------------------
@login_required
def release_index(request: HttpRequest) -> HttpResponse:
    _, project = projects_and_current(request)
    releases = release_list(user=request.user)
    if project is not None:
        releases = releases.filter(application__project=project)
    state = request.GET.get("state", "")
    if state in ReleaseState.values:
        releases = releases.filter(state=state)
    return page(request, "console/release_list.html", {
        "page_obj": paginate(request, releases), "state": state, "states": ReleaseState.choices,
    })


@login_required
def approval_queue(request: HttpRequest) -> HttpResponse:
    _, project = projects_and_current(request)
    releases = releases_awaiting_decision(user=request.user)
    if project is not None:
        releases = releases.filter(application__project=project)
    return page(request, "console/approval_queue.html", {
        "page_obj": paginate(request, releases.order_by("id")),
    })


# -- filing -----------------------------------------------------------------------------
def fileable_applications(user) -> QuerySet[Application]:
    """Applications the user may file releases of (the service checks again)."""
    applications = application_list(user=user)
    editing = projects_where(user, Action.FILE_RELEASE)
    if editing is not None:
        applications = applications.filter(project_id__in=editing)
    return applications.order_by("project__slug", "name")


@login_required
def release_new(request: HttpRequest) -> HttpResponse:
    applications = fileable_applications(request.user)
    if request.method == "POST":
        form = ReleaseForm(request.POST, request.FILES, applications=applications)
        files = ConfigFileFormSet(request.POST, prefix="files")
        if form.is_valid() and files.is_valid():
            arguments = form.service_arguments(files.config_files())
            try:
                if form.upload():
                    release = services.release_file_with_upload(actor=request.user, via="console",
                                                                upload=form.upload(), **arguments)
                else:
                    release = services.release_file(actor=request.user, via="console", **arguments)
            except ApplicationError as exc:
                attach_service_error(exc, form, files)
            else:
                return redirect("console:release-detail", release.id)
        status = 400
    else:
        initial = {key: request.GET[key] for key in ("application", "environment") if key in request.GET}
        form, files, status = ReleaseForm(initial=initial, applications=applications), ConfigFileFormSet(prefix="files"), 200
    return page(request, "console/release_form.html", {
        "form": form, "files": files, "no_applications": not applications.exists(),
        "artifact_fields": [form[name] for name in form.ARTIFACT_FIELDS],
    }, status=status)


# -- one release ------------------------------------------------------------------------
def timeline_context(request: HttpRequest, release: Release) -> dict[str, Any]:
    steps = list(release.steps.order_by("started_at", "id"))
    for step in steps:
        step.duration_text = format_duration(step.duration_seconds)
    return {
        "release": release, "steps": steps, "final": is_final(release.state), "progress": release_progress(release.state),
        "wait_reason": services.lane_wait_reason(release) if release.state == ReleaseState.APPROVED else "",
        "approvals": release.approvals.select_related("approver"),
        "audit_events": audit_event_list(user=request.user).filter(release_id=release.id).order_by("id"),
        "rollbacks": release.rollbacks.order_by("id").only("id", "state"),
        **release_actions(request.user, release),
    }


def review_context(release: Release) -> dict[str, Any]:
    """What a release changes against what runs now (image, replicas, config, cost): the approvers' view."""
    live = revision_live(application=release.application, environment=release.environment)
    replicas, replicas_error = (lane_replicas(application=release.application, environment=release.environment)
                                if live else (None, ""))
    return {"release": release, "live": live, "config_changes": config_changes(live_config(live), release.config),
            "spec": release.spec, "live_spec": live.spec if live else None,
            "live_replicas": replicas, "live_replicas_error": replicas_error}


@login_required
def release_detail(request: HttpRequest, release_id: int) -> HttpResponse:
    release = visible_release(request, release_id)
    context = timeline_context(request, release)
    context["application_changes"] = release_application_changes(release)
    if release.state == ReleaseState.REQUESTED:
        context.update(review_context(release), comment_form=CommentForm())
    return page(request, "console/release_detail.html", context)


@login_required
def release_timeline(request: HttpRequest, release_id: int) -> HttpResponse:
    """The live part of the release page; htmx polls it until the release is final."""
    release = visible_release(request, release_id)
    return render(request, "console/_timeline.html", timeline_context(request, release))


@login_required
def release_review(request: HttpRequest, release_id: int) -> HttpResponse:
    """What a release changes, loaded into the approver queue when a row is opened."""
    return render(request, "console/_review.html", review_context(visible_release(request, release_id)))


# -- the buttons ------------------------------------------------------------------------
def _decide(request: HttpRequest, release_id: int, decide, verb: str) -> HttpResponse:
    release = visible_release(request, release_id)
    form = CommentForm(request.POST)
    comment = form.cleaned_data["comment"] if form.is_valid() else ""
    perform(request, lambda: decide(release_id=release.id, actor=request.user, comment=comment),
            lambda r: f"You {verb} release #{r.id}; it is now {r.get_state_display().lower()}.")
    if request.POST.get("next") == "queue":
        return redirect("console:approvals")
    return redirect("console:release-detail", release.id)


@login_required
@require_POST
def release_approve(request: HttpRequest, release_id: int) -> HttpResponse:
    return _decide(request, release_id, services.approval_grant, "approved")


@login_required
@require_POST
def release_reject(request: HttpRequest, release_id: int) -> HttpResponse:
    return _decide(request, release_id, services.approval_reject, "rejected")


def _act(request: HttpRequest, release_id: int, service, success: str) -> HttpResponse:
    release = visible_release(request, release_id)
    perform(request, lambda: service(release_id=release.id, actor=request.user), lambda r: success.format(id=r.id))
    return redirect("console:release-detail", release.id)


@login_required
@require_POST
def release_cancel(request: HttpRequest, release_id: int) -> HttpResponse:
    return _act(request, release_id, services.release_cancel, "Release #{id} cancelled.")


@login_required
@require_POST
def release_retry(request: HttpRequest, release_id: int) -> HttpResponse:
    return _act(request, release_id, services.release_retry,
                "Release #{id} goes back into its lane, to resume from the step that failed.")


@login_required
def release_rollback(request: HttpRequest, release_id: int) -> HttpResponse:
    """GET asks for confirmation; POST files the rollback release (under the environment's approval policy)."""
    release = visible_release(request, release_id)
    form = RollbackForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        rollback = perform(
            request,
            lambda: services.release_rollback(release_id=release.id, actor=request.user, **form.cleaned_data),
            lambda r: f"Rollback filed as release #{r.id}: {r.description}.",
        )
        return redirect("console:release-detail", rollback.id if rollback else release.id)
    live = revision_live(application=release.application, environment=release.environment)
    return page(request, "console/rollback_confirm.html", {"release": release, "form": form, "live": live},
                status=400 if form.errors else 200)
