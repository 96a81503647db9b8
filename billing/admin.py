from copy import copy

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Sum
from django.forms.models import construct_instance
from django.http import HttpResponse

from deployments.admin import ProjectRuleAdmin
from deployments.permissions import Action
from paas_site.errors import ApplicationError
from paas_site.spreadsheet import csv_write

from . import selectors, services
from .models import Budget, BudgetAlert, CostRecord, MeteringGap, PriceBook, UsageSample


class ReadOnlyAdmin(admin.ModelAdmin):
    """Recorded facts: written by the metering and rating services only."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class PriceBookForm(forms.ModelForm):
    class Meta:
        model = PriceBook
        fields = ["name", "environment", "cluster", "valid_from", "valid_until", "currency", "cpu_core_hour",
                  "memory_gib_hour", "storage_gib_hour", "ingress_hour"]

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            candidate = construct_instance(self, copy(self.instance))
            other = selectors.price_book_overlapping(price_book=candidate)
            if other is not None:
                raise ValidationError({"valid_from": f"overlaps price book {other.name!r} of {other.scope_label}."})
        return cleaned


@admin.register(PriceBook)
class PriceBookAdmin(admin.ModelAdmin):
    form = PriceBookForm
    list_display = ["name", "environment", "cluster", "valid_from", "valid_until", "currency", "cpu_core_hour",
                    "memory_gib_hour", "ingress_hour"]
    list_filter = ["currency", "environment", "cluster"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in form.cleaned_data}
        try:
            if change:
                saved = services.price_book_update(actor=request.user, price_book_id=obj.id, data=data)
            else:
                saved = services.price_book_create(actor=request.user, data=data)
        except ApplicationError as exc:  # a concurrent writer got there between the form check and the save
            self.message_user(request, exc.message, level=messages.ERROR)
            return
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.price_book_delete(actor=request.user, price_book_id=obj.id)

    def delete_queryset(self, request, queryset):
        for price_book in queryset:  # "delete selected": each one through the audited service
            self.delete_model(request, price_book)


class BudgetAlertInline(admin.TabularInline):
    model = BudgetAlert
    extra = 0
    can_delete = False
    readonly_fields = ["threshold", "spent", "budget_amount", "currency", "created_at", "notified_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # alerts are recorded by budgets_check, never edited


@admin.register(Budget)
class BudgetAdmin(ProjectRuleAdmin):
    project_action = Action.MANAGE_BUDGETS
    list_display = ["project", "month", "amount", "currency"]
    list_filter = ["month", "currency"]
    search_fields = ["project__slug"]
    inlines = [BudgetAlertInline]

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in form.cleaned_data}
        if change:
            saved = services.budget_update(actor=request.user, budget_id=obj.id, data=data)
        else:
            saved = services.budget_create(actor=request.user, data=data)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.budget_delete(actor=request.user, budget_id=obj.id)

    def delete_queryset(self, request, queryset):
        for budget in queryset:  # "delete selected": each one through the audited service
            self.delete_model(request, budget)


@admin.action(description="Export CSV")
def export_csv(modeladmin, request, queryset):
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="slipway-cost-records.csv"'
    header = ["day", "project", "environment", "application", "price_book", "samples", "core_hours", "gib_hours",
              "ingress_hours", "amount", "currency"]
    records = queryset.select_related("project", "environment", "application", "price_book").order_by(
        "day", "project__slug", "environment__name", "application__name"
    )
    csv_write(response, [header, *(
        [record.day.isoformat(), record.project.slug, record.environment.name, record.application.name,
         record.price_book.name if record.price_book else "", record.samples, record.core_hours, record.gib_hours,
         record.ingress_hours, "" if record.amount is None else record.amount, record.currency]
        for record in records
    )])
    return response


@admin.register(CostRecord)
class CostRecordAdmin(ReadOnlyAdmin):
    list_display = ["day", "project", "environment", "application", "price_book", "core_hours", "gib_hours", "amount",
                    "currency"]
    list_filter = ["day", "currency", "project", "environment"]
    list_select_related = ["project", "environment", "application", "price_book"]
    date_hierarchy = "day"
    actions = [export_csv]

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context=extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            response.context_data["totals"] = list(
                changelist.queryset.order_by().values("currency").annotate(
                    amount=Sum("amount"), core_hours=Sum("core_hours"), gib_hours=Sum("gib_hours"), records=Count("id")
                ).order_by("currency")
            )
        return response


@admin.register(UsageSample)
class UsageSampleAdmin(ReadOnlyAdmin):
    list_display = ["sampled_at", "project", "environment", "application", "replicas", "cpu_cores", "memory_gib",
                    "exposed", "interval_seconds"]
    list_filter = ["environment", "cluster", "project"]
    list_select_related = ["project", "environment", "application"]
    date_hierarchy = "sampled_at"


@admin.register(MeteringGap)
class MeteringGapAdmin(ReadOnlyAdmin):
    list_display = ["sampled_at", "cluster", "reason"]
    list_filter = ["cluster"]
    date_hierarchy = "sampled_at"
