"""Notification pages: my notifications and my preferences (everyone); a project's chat channels and its
deliveries with every attempt (maintainers). Writes go through ``services.notification_settings``."""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from deployments.models import Project
from deployments.permissions import Action, project_may
from deployments.selectors import project_list
from paas_site.errors import ApplicationError

from ...choices import Medium
from ...models import NotificationChannel, NotificationDelivery
from ...services import notification_settings
from ...services.notifications import preferences_of
from ..forms import NotificationChannelForm, NotificationPreferencesForm
from .common import page, paginate, perform


@login_required
def notifications_mine(request: HttpRequest) -> HttpResponse:
    deliveries = (NotificationDelivery.objects.filter(recipient_id=request.user.id, medium=Medium.CONSOLE)
                  .select_related("notification").order_by("-id"))
    managed = [project for project in project_list(user=request.user).order_by("slug")
               if project_may(request.user, Action.MANAGE_WEBHOOKS, project)]
    return page(request, "console/notifications.html", {"page_obj": paginate(request, deliveries),
                                                        "managed": managed})


@login_required
def notification_preferences(request: HttpRequest) -> HttpResponse:
    picture = preferences_of(request.user)
    initial = {name: picture[name] for name in notification_settings.PROFILE_IDS}
    if request.method != "POST":
        form = NotificationPreferencesForm(initial=initial, events=picture["preferences"])
        return page(request, "console/notification_preferences.html", {"form": form})
    form = NotificationPreferencesForm(request.POST, events=picture["preferences"])
    if form.is_valid() and perform(
        request, lambda: notification_settings.notification_profile_update(
            actor=request.user, preferences=form.preferences(), **form.chat_ids()),
        lambda _: "Your notification preferences are saved.",
    ):
        return redirect("console:notification-preferences")
    return page(request, "console/notification_preferences.html", {"form": form}, status=400)


def _managed_project(request: HttpRequest, slug: str) -> Project:
    project = get_object_or_404(project_list(user=request.user), slug=slug)
    if not project_may(request.user, Action.MANAGE_WEBHOOKS, project):
        raise PermissionDenied(f"Only a maintainer of {project.slug} manages its notifications.")
    return project


@login_required
def project_notifications(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: channels and deliveries; POST: add a channel."""
    project = _managed_project(request, slug)
    form = NotificationChannelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            notification_settings.notification_channel_create(actor=request.user, project=project,
                                                              data=form.cleaned_data)
        except ApplicationError as error:
            for field, reasons in error.extra.get("fields", {"": [error.message]}).items():
                form.add_error(field if field in form.fields else None, reasons)
        else:
            return redirect("console:project-notifications", slug=project.slug)
    deliveries = (NotificationDelivery.objects.filter(notification__project=project)
                  .select_related("notification", "recipient").prefetch_related("attempt_log").order_by("-id"))
    return page(request, "console/project_notifications.html", {
        "project": project, "form": form, "page_obj": paginate(request, deliveries),
        "channels": NotificationChannel.objects.filter(project=project).order_by("name"),
    }, status=400 if request.method == "POST" else 200)


@login_required
@require_POST
def project_notification_channel_delete(request: HttpRequest, slug: str, channel_id: int) -> HttpResponse:
    project = _managed_project(request, slug)
    channel = get_object_or_404(NotificationChannel, project=project, id=channel_id)
    perform(request, lambda: notification_settings.notification_channel_delete(actor=request.user,
                                                                               channel_id=channel.id),
            lambda _: f"Channel {channel.name} deleted.")
    return redirect("console:project-notifications", slug=project.slug)


@login_required
@require_POST
def project_notification_channel_toggle(request: HttpRequest, slug: str, channel_id: int) -> HttpResponse:
    project = _managed_project(request, slug)
    channel = get_object_or_404(NotificationChannel, project=project, id=channel_id)
    perform(request, lambda: notification_settings.notification_channel_update(
        actor=request.user, channel_id=channel.id, data={"active": not channel.active}),
        lambda changed: f"Channel {changed.name} switched {'on' if changed.active else 'off'}.")
    return redirect("console:project-notifications", slug=project.slug)
