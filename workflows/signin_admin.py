"""The admin of sign-in: lockouts to unlock, and API tokens to revoke — never a token's value or key.

Registered from ``workflows.admin``. Both lists are read-only; their one action calls the audited service.
"""
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .lockout import rule_limits
from .models import ApiToken
from .services import signin


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
