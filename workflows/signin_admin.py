"""The admin of sign-in: lockouts to unlock, API tokens to revoke (never a token's value or key), the group
mapping (platform admins edit it through the audited service) and the directory accounts (read-only).

Registered from ``workflows.admin``.
"""
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from paas_site.errors import ApplicationError

from .lockout import rule_limits
from .models import ApiToken, DirectoryAccount, GroupRoleMapping
from .services import directory, signin


class ReadOnlyRows(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # only the audited action below removes rows


@admin.action(description="Unlock: forget these failed sign-ins", permissions=["unlock"])
def unlock(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    count = signin.signin_unlock(actor=request.user, attempt_ids=list(queryset.values_list("id", flat=True)))
    modeladmin.message_user(request, f"Unlocked {count} sign-in record(s).", level=messages.SUCCESS)


@admin.register(AccessAttempt)
class SignInLockoutAdmin(ReadOnlyRows):
    """Failed sign-ins by account, address and browser; a row at its limit is a lockout."""

    list_display = ["username", "ip_address", "failures_since_start", "locked", "attempt_time", "path_info"]
    list_filter = ["attempt_time", "path_info"]
    search_fields = ["username", "ip_address"]
    fields = ["username", "ip_address", "user_agent", "path_info", "failures_since_start", "attempt_time"]
    readonly_fields = fields
    actions = [unlock]

    @admin.display(boolean=True, description="account locked at this address")
    def locked(self, attempt: AccessAttempt) -> bool:
        return attempt.failures_since_start >= rule_limits()[0]

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser


@admin.action(description="Revoke the selected API tokens", permissions=["revoke"])
def revoke(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    count = signin.api_tokens_revoke(actor=request.user, token_ids=list(queryset.values_list("id", flat=True)),
                                     reason="revoked in the admin")
    modeladmin.message_user(request, f"Revoked {count} API token(s).", level=messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyRows):
    """Who holds which token until when; the token itself is not stored, and its lookup key is not shown."""

    list_display = ["name", "user", "created", "expiry"]
    list_filter = ["created", "expiry"]
    search_fields = ["name", "user__username"]
    list_select_related = ["user"]
    fields = ["name", "user", "created", "expiry"]
    readonly_fields = fields
    actions = [revoke]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser


class GroupRoleMappingForm(forms.ModelForm):
    class Meta:
        model = GroupRoleMapping
        fields = ["source", "group", "grant", "project", "role"]

    def _post_clean(self):
        super()._post_clean()  # sets the fields on the instance
        try:
            directory.group_mapping_check(self.instance)
        except ApplicationError as exc:
            for field, reasons in exc.extra.get("fields", {}).items():
                self.add_error(field if field in self.fields else None, reasons)

    def validate_unique(self):
        pass  # group_mapping_check names a duplicate, and the field


@admin.register(GroupRoleMapping)
class GroupRoleMappingAdmin(admin.ModelAdmin):
    """Directory / IdP groups → Slipway roles, applied at every sign-in; every edit is audited."""

    form = GroupRoleMappingForm
    list_display = ["group", "source", "grant", "project", "role"]
    list_filter = ["source", "grant", "role"]
    search_fields = ["group", "project__slug"]
    list_select_related = ["project"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    has_add_permission = has_module_permission
    has_change_permission = has_delete_permission = has_view_permission

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data.get(name) for name in directory.MAPPING_FIELDS}
        fields["role"] = fields["role"] or ""
        if change:
            form.instance = directory.group_mapping_change(actor=request.user, mapping_id=obj.pk, **fields)
        else:
            form.instance = directory.group_mapping_create(actor=request.user, **fields)
        obj.pk = form.instance.pk

    def save_related(self, request, form, formsets, change):
        pass  # no many-to-many fields or inlines

    def delete_model(self, request, obj):
        directory.group_mapping_delete(actor=request.user, mapping_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for mapping_id in queryset.values_list("id", flat=True):
            directory.group_mapping_delete(actor=request.user, mapping_id=mapping_id)


@admin.register(DirectoryAccount)
class DirectoryAccountAdmin(ReadOnlyRows):
    """Who signs in through the directory or the OpenID provider, with the groups seen at the latest check."""

    list_display = ["user", "source", "subject", "checked_at", "disabled_by_directory"]
    list_filter = ["source", "disabled_by_directory"]
    search_fields = ["user__username", "subject"]
    list_select_related = ["user"]
    fields = ["user", "source", "subject", "groups", "checked_at", "granted_finance", "granted_admin_access",
              "granted_approvers_group", "granted_platform_admin", "disabled_by_directory"]
    readonly_fields = fields
