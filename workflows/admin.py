"""The admin of the release process: approvers sign releases off here.

Who uses it:

- **Approvers** are staff users (``is_staff``) with the ``workflows.view_release``
  permission (and ``workflows.view_auditevent`` to browse the audit trail). They
  see only the releases of projects they belong to, read-only, and decide with
  the Approve / Reject buttons on a release's page.
- **Platform admins** (superusers) see every project and manage freeze windows;
  with them, a project's maintainers manage its webhooks and CI tokens (the rule
  of ``deployments.permissions``, as in the API).

Nothing here changes a release by itself: every button calls the same service
as the API (``workflows.services``), which checks roles, self-approval and
state. Releases are filed through the API or the web form, never added here,
and nothing in this app is deleted here: it is history.
"""
import calendar
import difflib
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.validators import MaxValueValidator
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from deployments.admin import ProjectRuleAdmin
from deployments.models import Project, Revision
from deployments.permissions import Action
from deployments.selectors import project_roles
from deployments.services import lane_replicas, revision_live
from paas_site.errors import ApplicationError

from . import audit, services
from .choices import Decision, FreezeKind, ReleaseState, WebhookEvent
from .models import AuditEvent, CiToken, FreezeWindow, ProjectWebhook, Release, StepRun
from .permissions import release_actions
from .selectors import release_of_revision, releases_awaiting_decision
from .services.snapshots import release_application_changes


class WorkflowsAdmin(admin.ModelAdmin):
    """Base of this app's admins: nothing is deleted, and non-superusers see only their projects' rows."""

    project_field = ""  # lookup of the owning project's id; "" when the model belongs to no project

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        rows = super().get_queryset(request)
        if not self.project_field or request.user.is_superuser:
            return rows
        return rows.filter(**{f"{self.project_field}__in": project_roles(request.user).keys()})

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        # What a user may not see is "not found", as in the API, rather than the admin's redirect.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} {object_id} visible to you.")
        return obj

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.related_model is Project and not request.user.is_superuser:
            kwargs["queryset"] = Project.objects.filter(id__in=project_roles(request.user).keys())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class AuditedAdmin(WorkflowsAdmin):
    """Records each save in the audit trail (the admin saves inside a transaction), once the form's
    many-to-many fields are saved too."""

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:
        obj._audit_before = audit.snapshot(type(obj).objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        if change:
            audit.object_changed(actor=request.user, obj=obj, before=obj._audit_before)
        else:
            audit.object_created(actor=request.user, obj=obj)


# -- releases -----------------------------------------------------------------------
class AwaitingMyApprovalFilter(admin.SimpleListFilter):
    """Requested releases of my projects that I may still decide on."""

    title = "awaiting my approval"
    parameter_name = "awaiting"

    def lookups(self, request, model_admin):
        return [("me", "Awaiting my approval")]

    def queryset(self, request, queryset):
        if self.value() != "me":
            return queryset
        return releases_awaiting_decision(user=request.user, releases=queryset)


class StepRunInline(admin.TabularInline):
    model = StepRun
    fields = ["step", "attempt", "status", "started_at", "finished_at", "duration", "error", "log_text"]
    readonly_fields = fields
    extra = 0

    def has_view_permission(self, request, obj=None):
        return True  # the steps are part of the release: whoever may view the release page sees them

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="duration")
    def duration(self, run: StepRun) -> str:
        return "–" if run.duration_seconds is None else f"{run.duration_seconds:.1f} s"

    @admin.display(description="log")
    def log_text(self, run: StepRun) -> str:
        return format_html('<pre style="max-height: 24em; overflow: auto">{}</pre>', run.log)


@admin.register(Release)
class ReleaseAdmin(WorkflowsAdmin):
    """Read-only releases with what they change, and buttons that call the release services."""

    project_field = "application__project_id"
    list_display = ["id", "application_name", "environment", "version", "state", "requested_by", "created_at",
                    "approvals_column"]
    list_filter = [AwaitingMyApprovalFilter, "state", "environment"]
    search_fields = ["application__name", "version", "application__project__slug"]
    list_select_related = ["application__project", "environment", "requested_by"]
    inlines = [StepRunInline]
    readonly_fields = ["fingerprint"]
    fieldsets = [
        (None, {"fields": ["application", "environment", "version", "state", "requested_by", "requested_via",
                           "created_at", "description", "scheduled_at"]}),
        ("Artifact", {"fields": ["fingerprint", "image", "image_digest", "config", "config_hash", "snapshot"]}),
        ("Progress", {"fields": ["approved_at", "started_at", "finished_at", "failed_step", "failure_reason",
                                 "revision", "replaced", "rollback_of", "rollback_to"]}),
    ]
    # url name suffix → what the success message says happened
    ACTIONS = {"approve": "Approval recorded for", "reject": "Rejected", "cancel": "Cancelled", "retry": "Retrying"}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(approvals_given=Count(
            "approvals", filter=Q(approvals__decision=Decision.APPROVE, approvals__voided_at__isnull=True)
        ))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # state and artifact change only through the services

    @admin.display(description="application", ordering="application__name")
    def application_name(self, release: Release) -> str:
        return f"{release.application.project.slug}/{release.application.name}"

    @admin.display(description="fingerprint")
    def fingerprint(self, release: Release) -> str:
        return release.fingerprint_short

    @admin.display(description="approvals", ordering="approvals_given")
    def approvals_column(self, release: Release) -> str:
        return f"{release.approvals_given} / {release.environment.required_approvals}"

    # -- the change page: what the release changes, and the buttons -------------------
    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self.review_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def review_context(self, request: HttpRequest, release: Release) -> dict[str, Any]:
        live = revision_live(application=release.application, environment=release.environment)
        # The same button rules as the console (workflows.permissions); the services decide again.
        actions = release_actions(request.user, release)
        replicas, replicas_error = (lane_replicas(application=release.application, environment=release.environment)
                                    if live else (None, ""))
        return {
            "live": live,
            "live_replicas": replicas,
            "live_replicas_error": replicas_error,
            "config_changes": config_changes(live_config(live), release.config),
            "application_changes": release_application_changes(release),
            "approval_list": release.approvals.select_related("approver"),
            "wait_reason": services.lane_wait_reason(release) if release.state == ReleaseState.APPROVED else "",
            "audit_events": AuditEvent.objects.filter(release_id=release.id).order_by("id"),
            **{name: actions[name] for name in ("can_decide", "can_cancel", "can_retry")},
        }

    def get_urls(self):
        act = self.admin_site.admin_view(require_POST(self.act_view))
        return [
            path(f"<path:object_id>/{action}/", act, {"action": action}, name=f"workflows_release_{action}")
            for action in self.ACTIONS
        ] + super().get_urls()

    def act_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        release = self.get_object(request, unquote(object_id))
        if not self.has_view_permission(request, release):
            raise PermissionDenied
        try:
            release = self._call_service(action, release.id, request)
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
        else:
            self.message_user(request, f"{self.ACTIONS[action]} {release}; it is now {release.get_state_display().lower()}.",
                              level=messages.SUCCESS)
        return redirect("admin:workflows_release_change", release.pk)

    @staticmethod
    def _call_service(action: str, release_id: int, request: HttpRequest) -> Release:
        actor, comment = request.user, request.POST.get("comment", "").strip()
        match action:
            case "approve":
                return services.approval_grant(release_id=release_id, actor=actor, comment=comment)
            case "reject":
                return services.approval_reject(release_id=release_id, actor=actor, comment=comment)
            case "cancel":
                return services.release_cancel(release_id=release_id, actor=actor)
            case "retry":
                return services.release_retry(release_id=release_id, actor=actor)
            case _:
                raise Http404(action)


def live_config(live: Revision | None) -> dict[str, Any]:
    """The config of what runs now: that of the release which produced the live revision.

    An automatic rollback records a revision no release points to; it re-applies
    its ``source``, so follow that back to a release.
    """
    producer = release_of_revision(live)
    return producer.config if producer else {}


def config_changes(live: dict[str, Any], release: dict[str, Any]) -> list[dict[str, str]]:
    """The env vars and files a release adds, changes or removes; files with a unified diff."""
    changes = []
    for section, kind in (("env", "env var"), ("files", "file")):
        old, new = live.get(section, {}), release.get(section, {})
        for name in sorted(old.keys() | new.keys()):
            before, after = old.get(name), new.get(name)
            if before == after:
                continue
            change = {"kind": kind, "name": name, "before": before or "", "after": after or "", "diff": "",
                      "change": "added" if before is None else "removed" if after is None else "changed"}
            if section == "files":
                change["diff"] = "\n".join(difflib.unified_diff(
                    change["before"].splitlines(), change["after"].splitlines(),
                    fromfile=f"running/{name}", tofile=f"release/{name}", lineterm="",
                ))
            changes.append(change)
    return changes


# -- the audit trail ----------------------------------------------------------------
@admin.register(AuditEvent)
class AuditEventAdmin(WorkflowsAdmin):
    """The audit trail, read-only, for auditors and approvers (their projects' events)."""

    project_field = "project_id"
    list_display = ["created_at", "actor", "action", "target_repr", "release_link", "message"]
    list_filter = ["action"]
    search_fields = ["actor", "target_repr", "message"]
    show_full_result_count = False  # the trail only grows; skip the second COUNT(*)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="release", ordering="release_id")
    def release_link(self, event: AuditEvent) -> str:
        if event.release_id is None:
            return "–"
        url = reverse("admin:workflows_release_change", args=[event.release_id])
        return format_html('<a href="{}">#{}</a>', url, event.release_id)


# -- configuration: freeze windows, webhooks, CI tokens ---------------------------------
@admin.register(FreezeWindow)
class FreezeWindowAdmin(AuditedAdmin):
    list_display = ["environment", "kind", "when", "timezone", "reason"]
    list_filter = ["environment", "kind"]
    search_fields = ["environment__name", "reason"]
    list_select_related = ["environment"]

    @admin.display(description="when")
    def when(self, window: FreezeWindow) -> str:
        if window.kind == FreezeKind.WEEKLY:
            days = calendar.day_abbr
            return (f"every {days[window.start_weekday]} {window.start_time:%H:%M} – "
                    f"{days[window.end_weekday]} {window.end_time:%H:%M}")
        return f"{window.starts_at:%Y-%m-%d %H:%M} – {window.ends_at:%Y-%m-%d %H:%M}"


class ProjectWebhookForm(forms.ModelForm):
    """The secret is write-only: never rendered; leaving it empty keeps the stored one."""

    url = forms.URLField(max_length=500, assume_scheme="https")
    secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="Signs each body (X-Slipway-Signature). Leave empty to keep the stored secret.",
    )
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = ProjectWebhook
        fields = ["project", "url", "secret", "events", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.pop("secret", None)

    def clean_secret(self) -> str:
        secret = self.cleaned_data["secret"] or self.instance.secret
        if not secret:
            raise forms.ValidationError("A new webhook needs a secret.")
        return secret


@admin.register(ProjectWebhook)
class ProjectWebhookAdmin(ProjectRuleAdmin, AuditedAdmin):
    project_action = Action.MANAGE_WEBHOOKS
    form = ProjectWebhookForm
    project_field = "project_id"
    list_display = ["project", "url", "events", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["project__slug", "url"]
    list_select_related = ["project"]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if self.has_change_permission(request, obj):
            return fields
        return [field for field in fields if field != "secret"]  # a view-only page would print it as text


class CiTokenForm(forms.ModelForm):
    expires_in_days = forms.IntegerField(min_value=1, help_text="Days until it stops working.")

    class Meta:
        model = CiToken
        fields = ["project", "name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:  # a saved token's page shows it read-only: nothing of it can change
            self.fields.pop("expires_in_days", None)
        if "expires_in_days" in self.fields:
            self.fields["expires_in_days"].initial = settings.SLIPWAY_CI_TOKEN_DEFAULT_DAYS
            self.fields["expires_in_days"].max_value = settings.SLIPWAY_CI_TOKEN_MAX_DAYS
            self.fields["expires_in_days"].validators.append(MaxValueValidator(settings.SLIPWAY_CI_TOKEN_MAX_DAYS))


@admin.register(CiToken)
class CiTokenAdmin(ProjectRuleAdmin, WorkflowsAdmin):
    """Created (owned by whoever creates it) and revoked through the CI token services; shown once.

    Only its hash is stored; a token never changes project, name or owner after it is created.
    """

    project_action = Action.MANAGE_CI_TOKENS
    project_field = "project_id"
    form = CiTokenForm
    list_display = ["prefix", "name", "project", "owner", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "name", "project__slug", "owner__username"]
    list_select_related = ["project", "owner"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["project", "name", "expires_in_days"]
        return ["name", "project", "owner", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def save_model(self, request, obj: CiToken, form, change: bool) -> None:
        if change:
            return  # nothing of a token is editable
        try:
            saved, token = services.ci_token_create(
                actor=request.user, project=form.cleaned_data["project"], name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return
        obj.pk = saved.pk
        self.message_user(request, f"The new CI token is {token} — copy it now: it will not be shown again.",
                          level=messages.SUCCESS)

    @admin.action(description="Revoke the selected CI tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = 0
        for ci_token in queryset:
            try:
                services.ci_token_revoke(actor=request.user, token_id=ci_token.id)
            except ApplicationError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
            else:
                revoked += 1
        if revoked:
            self.message_user(request, f"{revoked} CI token(s) revoked.", level=messages.SUCCESS)


from . import signin_admin  # noqa: E402,F401  (lockouts and API tokens)
