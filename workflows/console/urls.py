"""The web console, mounted at ``/``: server-rendered pages, htmx for the live parts."""
from django.contrib.auth import views as auth_views
from django.urls import path

from .views import applications, common, costs, notifications, releases, tokens

app_name = "console"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="console/login.html", redirect_authenticated_user=True),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only
    path("project/", common.project_switch, name="project-switch"),
    path("", applications.dashboard, name="dashboard"),
    path("applications/<int:application_id>/", applications.application_detail, name="application-detail"),
    path("applications/<int:application_id>/scale/", applications.application_scale, name="application-scale"),
    path("applications/<int:application_id>/logs/", applications.pod_logs, name="pod-logs"),
    path("releases/", releases.release_index, name="release-list"),
    path("releases/new/", releases.release_new, name="release-new"),
    path("releases/<int:release_id>/", releases.release_detail, name="release-detail"),
    path("releases/<int:release_id>/timeline/", releases.release_timeline, name="release-timeline"),
    path("releases/<int:release_id>/review/", releases.release_review, name="release-review"),
    path("releases/<int:release_id>/approve/", releases.release_approve, name="release-approve"),
    path("releases/<int:release_id>/reject/", releases.release_reject, name="release-reject"),
    path("releases/<int:release_id>/cancel/", releases.release_cancel, name="release-cancel"),
    path("releases/<int:release_id>/retry/", releases.release_retry, name="release-retry"),
    path("releases/<int:release_id>/rollback/", releases.release_rollback, name="release-rollback"),
    path("approvals/", releases.approval_queue, name="approvals"),
    path("costs/", costs.cost_report, name="costs"),
    path("costs/export.csv", costs.cost_report_csv, name="costs-csv"),
    path("tokens/", tokens.api_tokens, name="api-tokens"),
    path("tokens/<int:token_id>/revoke/", tokens.api_token_revoke, name="api-token-revoke"),
    path("notifications/", notifications.notifications_mine, name="notifications"),
    path("notifications/preferences/", notifications.notification_preferences, name="notification-preferences"),
    path("projects/<slug:slug>/notifications/", notifications.project_notifications, name="project-notifications"),
    path("projects/<slug:slug>/notifications/<int:channel_id>/delete/", notifications.project_notification_channel_delete,
         name="project-notification-channel-delete"),
    path("projects/<slug:slug>/notifications/<int:channel_id>/toggle/", notifications.project_notification_channel_toggle,
         name="project-notification-channel-toggle"),
]
