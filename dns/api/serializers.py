from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from deployments.api.serializers import ModelCleanSerializer
from paas_site.api import SlugRelatedField

from .. import naming
from ..models import Record, Zone


class ZoneNameField(serializers.CharField):
    """Accepts ``Internal.Example`` and stores the canonical ``internal.example.``."""

    def to_internal_value(self, data):
        try:
            return naming.canonical_name(super().to_internal_value(data), what="zone name")
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class ZoneSerializer(ModelCleanSerializer):
    """The API key goes in and never comes back out; leaving it out (or empty) keeps the stored one."""

    name = ZoneNameField(
        max_length=254, validators=[UniqueValidator(Zone.objects.all(), message="a zone with this name already exists.")]
    )
    api_key = serializers.CharField(write_only=True, required=False, allow_blank=True, style={"input_type": "password"})
    has_api_key = serializers.BooleanField(read_only=True)
    environments = serializers.SerializerMethodField()

    class Meta:
        model = Zone
        fields = [
            "id", "name", "provider", "api_url", "server_id", "api_key", "has_api_key", "default_ttl", "description",
            "environments", "created_at", "updated_at",
        ]

    def get_environments(self, zone: Zone) -> list[dict[str, str]]:
        return [
            {"environment": attachment.environment.name, "name_pattern": attachment.name_pattern}
            for attachment in zone.environments.all()
        ]

    def validate(self, attrs):
        if not attrs.get("api_key"):
            attrs.pop("api_key", None)
        if self.instance and attrs.get("name", self.instance.name) != self.instance.name:
            if self.instance.records.exists():
                raise serializers.ValidationError({"name": "a zone with records cannot be renamed."})
        return super().validate(attrs)


class RecordSerializer(serializers.ModelSerializer):
    zone = SlugRelatedField(slug_field="name", read_only=True)
    project = serializers.SerializerMethodField()
    application_name = serializers.SerializerMethodField()
    environment = SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Record
        fields = [
            "id", "zone", "name", "type", "content", "ttl", "application", "application_name", "project", "environment",
            "status", "last_error", "created_at", "updated_at",
        ]
        read_only_fields = fields

    def get_project(self, record: Record) -> str | None:
        return record.application.project.slug if record.application else None

    def get_application_name(self, record: Record) -> str | None:
        return record.application.name if record.application else None
