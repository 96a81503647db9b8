from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse

from deployments.admin import AuditedAdmin, ReadOnlyAdmin
from paas_site.errors import ApplicationError, ExternalError

from . import selectors, services
from .models import EnvironmentZone, Record, Zone


class ZoneForm(forms.ModelForm):
    """The API key is write-only here too: never rendered, and left empty it keeps the stored one."""

    api_key = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="PowerDNS API key. Leave empty to keep the stored one.",
    )

    class Meta:
        model = Zone
        fields = ["name", "provider", "api_url", "server_id", "api_key", "default_ttl", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.pop("api_key", None)

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("api_key") and self.instance.pk:
            cleaned["api_key"] = Zone.objects.get(pk=self.instance.pk).api_key
            self.instance.api_key = cleaned["api_key"]
        return cleaned


@admin.register(Zone)
class ZoneAdmin(AuditedAdmin):
    form = ZoneForm
    list_display = ["name", "provider", "api_url", "has_api_key", "default_ttl"]
    list_filter = ["provider"]
    search_fields = ["name", "description"]
    actions = ["download_zone_file"]

    @admin.display(boolean=True)
    def has_api_key(self, obj: Zone) -> bool:
        return obj.has_api_key

    def get_readonly_fields(self, request, obj=None):
        # Renaming a zone would strand the names already published in it.
        return ["name"] if obj is not None and obj.records.exists() else []

    @admin.action(description="Download the zone file (Slipway's records, BIND format)")
    def download_zone_file(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one zone to download.", messages.WARNING)
            return None
        zone = queryset.get()
        response = HttpResponse(selectors.zone_file(zone=zone), content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{zone.name}zone"'
        return response


class EnvironmentZoneForm(forms.ModelForm):
    class Meta:
        model = EnvironmentZone
        fields = ["environment", "zone", "name_pattern"]

    def clean(self):
        cleaned = super().clean()
        environment, zone, pattern = cleaned.get("environment"), cleaned.get("zone"), cleaned.get("name_pattern")
        if environment and zone and pattern and not self.errors:
            collisions = selectors.name_collisions(environment=environment, zone=zone, name_pattern=pattern)
            if collisions:
                shown = "; ".join(f"{name} for {' and '.join(owners)}" for name, owners in list(collisions.items())[:5])
                raise forms.ValidationError(
                    f"This pattern gives two applications the same DNS name: {shown}. "
                    "Add {environment} (or {project}) to the pattern, or use another zone."
                )
        return cleaned


@admin.register(EnvironmentZone)
class EnvironmentZoneAdmin(AuditedAdmin):
    form = EnvironmentZoneForm
    list_display = ["environment", "zone", "name_pattern"]
    list_filter = ["zone"]
    list_select_related = ["environment", "zone"]


@admin.register(Record)
class RecordAdmin(ReadOnlyAdmin):
    """Records are written by the DNS services only; here they are read, and published again on demand."""

    list_display = ["name", "type", "content", "ttl", "zone", "application", "environment", "status", "updated_at"]
    list_filter = ["status", "type", "zone"]
    search_fields = ["name", "content", "application__name", "application__project__slug"]
    list_select_related = ["zone", "application__project", "environment"]
    readonly_fields = [field.name for field in Record._meta.fields]
    actions = ["publish_again"]

    @admin.action(description="Publish the selected records' applications again")
    def publish_again(self, request, queryset):
        pairs = sorted(set(
            queryset.filter(application__isnull=False, environment__isnull=False)
            .values_list("application_id", "environment_id")
        ))
        published = 0
        for application_id, environment_id in pairs:
            try:
                services.dns_publish(application_id=application_id, environment_id=environment_id)
                published += 1
            except (ApplicationError, ExternalError) as exc:
                self.message_user(request, exc.message, messages.ERROR)
        if published:
            self.message_user(request, f"Published {published} application name(s) again.", messages.SUCCESS)
