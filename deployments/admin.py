from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.urls import reverse
from django.utils.html import format_html

from paas_site.errors import ApplicationError

from . import changes, memberships
from .models import (
    Application,
    BaseImage,
    Cluster,
    Environment,
    MiddlewareInstance,
    Package,
    Project,
    ProjectMembership,
    Revision,
)
from .permissions import Action, project_may, projects_where, refusal, user_is_platform_admin


class AuditedAdmin(admin.ModelAdmin):
    """Admin edits land in the audit trail, in the admin's own transaction (after related objects are saved)."""

    def save_model(self, request, obj, form, change):
        obj._audit_before = changes.recorder().snapshot(type(obj).objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj = form.instance
        if change:
            changes.recorder().object_changed(actor=request.user, obj=obj, before=obj._audit_before)
        else:
            changes.recorder().object_created(actor=request.user, obj=obj)

    def delete_model(self, request, obj):
        changes.deletion_record(actor=request.user, obj=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class ProjectRuleAdmin(admin.ModelAdmin):
    """Objects that name a project: the API's rule in the admin (``deployments.permissions``).

    Changing or deleting one needs ``project_action`` in its project; saving it needs that right in the
    project it ends up in, too; and when ``project_movable`` is off its project cannot change at all.
    The form says so next to the project field, and nothing is saved.
    """

    project_action: Action
    project_delete_action: Action | None = None  # None: project_action
    project_movable = True

    def object_project(self, obj):
        return obj.project if obj is not None and obj.project_id else None

    def get_queryset(self, request):
        """Rows of the projects the user sees, as in the API (others are not found)."""
        rows = super().get_queryset(request)
        visible = projects_where(request.user, Action.VIEW)
        return rows if visible is None else rows.filter(project_id__in=visible)

    def has_change_permission(self, request, obj=None) -> bool:
        project = self.object_project(obj)
        return super().has_change_permission(request, obj) and (
            project is None or project_may(request.user, self.project_action, project)
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        project = self.object_project(obj)
        return super().has_delete_permission(request, obj) and (
            project is None or project_may(request.user, self.project_delete_action or self.project_action, project)
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        rule = self

        class ProjectRuleForm(form):
            def clean(self):
                cleaned = super().clean()
                rule.project_rule_check(request, self, cleaned.get("project"))
                return cleaned

        ProjectRuleForm.__name__ = form.__name__
        return ProjectRuleForm

    def project_rule_check(self, request, form, destination) -> None:
        """Add the refusal to ``form``'s project field (or to the form) when the rule is broken."""
        source = self.object_project(form.instance) if form.instance.pk else None
        field = "project" if "project" in form.fields else None
        if source is not None and destination is not None and destination != source and not self.project_movable:
            form.add_error(field, f"a {self.opts.verbose_name} cannot move to another project.")
            return
        for project in (source, destination):
            if project is not None and not project_may(request.user, self.project_action, project):
                form.add_error(field, refusal(self.project_action, project))
                return

    def delete_model(self, request, obj):
        if not self.has_delete_permission(request, obj):
            raise PermissionDenied
        super().delete_model(request, obj)


class ProjectMembershipInline(admin.TabularInline):
    """Read-only: memberships are added and changed on their own admin page, the one audited door
    (an inline formset would save them behind ``AuditedAdmin``, which records the parent only)."""

    model = ProjectMembership
    extra = 0
    fields = ["user", "role", "created_at", "edit_link"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="edit")
    def edit_link(self, membership: ProjectMembership) -> str:
        url = reverse("admin:deployments_projectmembership_change", args=[membership.pk])
        return format_html('<a href="{}">change or remove</a>', url)


@admin.register(Project)
class ProjectAdmin(AuditedAdmin):
    list_display = ["slug", "name", "cost_center", "created_at"]
    search_fields = ["slug", "name", "cost_center"]
    inlines = [ProjectMembershipInline]
    readonly_fields = ["add_membership"]

    @admin.display(description="memberships")
    def add_membership(self, project: Project) -> str:
        if not project.pk:
            return "Add members once the project is saved."
        url = reverse("admin:deployments_projectmembership_add")
        return format_html('<a href="{}?project={}">Add a member</a>', url, project.pk)

    # As in the API: a project's maintainers change it; only platform admins create or delete projects.
    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and user_is_platform_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and (
            obj is None or project_may(request.user, Action.CHANGE_PROJECT, obj)
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and user_is_platform_admin(request.user)


@admin.register(ProjectMembership)
class ProjectMembershipAdmin(ProjectRuleAdmin):
    """Through the membership services: a membership never moves; its project's maintainers manage it."""

    project_action = Action.MANAGE_MEMBERSHIPS
    project_movable = False
    list_display = ["project", "user", "role", "created_at"]
    list_filter = ["role", "project"]
    search_fields = ["project__slug", "user__username"]
    list_select_related = ["project", "user"]
    autocomplete_fields = ["project", "user"]

    def get_readonly_fields(self, request, obj=None):
        return ["project", "user"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        try:
            if change:
                saved = memberships.membership_change(actor=request.user, membership_id=obj.id, role=obj.role)
            else:
                saved = memberships.membership_create(actor=request.user, project=obj.project, user=obj.user,
                                                      role=obj.role)
        except ApplicationError as exc:  # changed by someone else between the form check and the save
            self.message_user(request, exc.message, level=messages.ERROR)
            return
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        memberships.membership_delete(actor=request.user, membership_id=obj.id)

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            memberships.membership_delete(actor=request.user, membership_id=membership.id)


class ClusterForm(forms.ModelForm):
    """Secrets are write-only here too: the form never renders a stored value.

    Leaving a secret field empty keeps what is stored.
    """

    token = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False))
    kubeconfig = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6}), help_text="Leave empty to keep the stored one."
    )

    class Meta:
        model = Cluster
        fields = ["name", "api_server", "auth_method", "token", "ca_certificate", "kubeconfig",
                  "ingress_address", "ingress_class", "labels"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.pop("token", None)
        self.initial.pop("kubeconfig", None)

    def clean(self):
        cleaned = super().clean()
        for secret in ("token", "kubeconfig"):
            if not cleaned.get(secret) and self.instance.pk:
                cleaned[secret] = getattr(Cluster.objects.get(pk=self.instance.pk), secret)
                setattr(self.instance, secret, cleaned[secret])
        return cleaned


@admin.register(Cluster)
class ClusterAdmin(AuditedAdmin):
    form = ClusterForm
    list_display = ["name", "api_server", "auth_method", "has_credentials", "ingress_address"]
    list_filter = ["auth_method"]
    search_fields = ["name", "api_server"]

    @admin.display(boolean=True)
    def has_credentials(self, obj: Cluster) -> bool:
        return obj.has_credentials


@admin.register(Environment)
class EnvironmentAdmin(AuditedAdmin):
    list_display = ["name", "rank", "cluster", "namespace_pattern", "required_approvals", "allow_self_approval"]
    list_filter = ["cluster", "required_approvals"]
    search_fields = ["name"]
    list_select_related = ["cluster"]


@admin.register(BaseImage)
class BaseImageAdmin(AuditedAdmin):
    list_display = ["name", "display_name", "image", "default_port", "app_path", "config_path"]
    search_fields = ["name", "display_name", "image"]


@admin.register(Application)
class ApplicationAdmin(ProjectRuleAdmin, AuditedAdmin):
    project_action = Action.EDIT_APPLICATION
    project_delete_action = Action.DELETE_APPLICATION
    project_movable = False
    list_display = ["name", "project", "base_image", "image", "replicas", "exposed", "updated_at"]
    list_filter = ["project", "base_image", "exposed"]
    search_fields = ["name", "project__slug", "description"]
    list_select_related = ["project", "base_image"]
    filter_horizontal = ["allowed_callers", "uses_middleware"]
    autocomplete_fields = ["project"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


class ReadOnlyAdmin(admin.ModelAdmin):
    """History and stored artifacts: readable here (the rows of projects you see), written only by the services."""

    project_lookup = "application__project_id"
    read_action = Action.VIEW

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        visible = projects_where(request.user, self.read_action)
        return rows if visible is None else rows.filter(**{f"{self.project_lookup}__in": visible})

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Revision)
class RevisionAdmin(ReadOnlyAdmin):
    """Revisions are history: readable, never edited here."""

    list_display = ["__str__", "kind", "image", "replicas", "release", "created_at"]
    list_filter = ["kind", "environment"]
    search_fields = ["application__name", "application__project__slug", "image", "release"]
    list_select_related = ["application__project", "environment"]
    readonly_fields = [f.name for f in Revision._meta.fields]


@admin.register(MiddlewareInstance)
class MiddlewareInstanceAdmin(ReadOnlyAdmin):
    """Read-only: instances are created and released through the API (a release each), and their
    generated credentials are not shown anywhere."""

    list_display = ["application", "template", "environments", "created_at"]
    list_filter = ["template"]
    search_fields = ["application__name", "application__project__slug"]
    list_select_related = ["application__project"]
    fields = ["application", "template", "variables", "environments", "created_at"]
    readonly_fields = fields

    @admin.display(description="credentials generated in")
    def environments(self, obj: MiddlewareInstance) -> str:
        return ", ".join(sorted(obj.credentials.values_list("environment__name", flat=True))) or "-"


@admin.register(Package)
class PackageAdmin(ReadOnlyAdmin):
    """Uploaded packages: readable here; uploads go through the API (which computes their sha256)."""

    project_lookup = "project_id"
    read_action = Action.READ_PACKAGES

    list_display = ["filename", "project", "size", "sha256", "uploaded_by", "created_at"]
    list_filter = ["project"]
    search_fields = ["filename", "sha256", "project__slug"]
    list_select_related = ["project", "uploaded_by"]
    readonly_fields = [f.name for f in Package._meta.fields]


from . import auth_admin  # noqa: E402,F401  (users and groups: the audited replacements of the stock admins)
