from rest_framework import serializers

from deployments import middleware
from deployments.api.operations import EnvironmentChoice
from deployments.models import Application, MiddlewareInstance, Package
from paas_site.api import DateTimeField

from ..models import AuditEvent, CiToken, Release, StepRun

VERSION_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}\Z"  # the web console's release form checks the same
COMMIT_PATTERN = r"^[\w.-]{1,64}\Z"


class ReleaseSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="application.project.slug", read_only=True)
    application = serializers.CharField(source="application.name", read_only=True)
    application_id = serializers.IntegerField(read_only=True)
    environment = serializers.CharField(source="environment.name", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True, default=None)
    approvals_given = serializers.IntegerField(read_only=True)
    approvals_required = serializers.IntegerField(source="environment.required_approvals", read_only=True)
    revision = serializers.IntegerField(source="revision.number", read_only=True, default=None)
    fingerprint = serializers.CharField(read_only=True, help_text="What approvals are bound to: the hash of the "
                                        "release's snapshot, pinned artifact, commit and config.")
    fingerprint_short = serializers.CharField(read_only=True)

    class Meta:
        model = Release
        fields = [
            "id", "project", "application", "application_id", "environment", "version", "fingerprint",
            "fingerprint_short", "image", "image_digest",
            "package", "package_url", "package_sha256", "commit", "config", "config_hash", "description",
            "scheduled_at", "state", "requested_by", "requested_via",
            "approvals_given", "approvals_required", "revision", "rollback_of", "failed_step", "failure_reason",
            "created_at", "approved_at", "started_at", "finished_at",
        ]
        read_only_fields = fields


class ReleaseDetailSerializer(ReleaseSerializer):
    waiting_reason = serializers.CharField(read_only=True, help_text="Why an approved release has not started yet.")
    snapshot = serializers.JSONField(read_only=True, help_text="What the release runs, frozen when it was filed.")
    application_changed = serializers.SerializerMethodField(
        help_text="The application (or its environment) changed after this release was filed; the release still "
                  "runs its snapshot: file again to deploy the change."
    )
    application_changes = serializers.ListField(child=serializers.CharField(), read_only=True, default=list,
                                                help_text="The snapshot fields that differ now.")

    class Meta(ReleaseSerializer.Meta):
        fields = [*ReleaseSerializer.Meta.fields, "waiting_reason", "cost_impact", "snapshot", "application_changed",
                  "application_changes"]
        read_only_fields = fields

    def get_application_changed(self, release: Release) -> bool:
        return bool(getattr(release, "application_changes", []))


class ConfigField(serializers.JSONField):
    """``{"env": {...}, "files": {...}}``; checked in detail by the service."""


class ReleaseFileSerializer(serializers.Serializer):
    application = serializers.PrimaryKeyRelatedField(queryset=Application.objects.select_related("project"))
    environment = EnvironmentChoice()
    version = serializers.RegexField(VERSION_PATTERN, help_text="e.g. 1.4.2 or 2026.11.26-3")
    image = serializers.CharField(required=False, allow_blank=True, max_length=512,
                                  help_text="Prebuilt image; defaults to the application's repository:version.")
    package = serializers.PrimaryKeyRelatedField(
        queryset=Package.objects.all(), required=False, allow_null=True,
        help_text="For an application built from a base image: an uploaded package's id (POST /packages/).",
    )
    package_url = serializers.CharField(required=False, allow_blank=True, max_length=2000,
                                        help_text="Or: an http(s) URL of the package on an allow-listed host.")
    package_sha256 = serializers.RegexField(r"^[a-f0-9]{64}$", required=False, allow_blank=True,
                                            help_text="The package's expected sha256 (64 lowercase hex digits).")
    commit = serializers.RegexField(COMMIT_PATTERN, required=False, allow_blank=True,
                                    help_text="Source revision (e.g. a git commit), labelled on a built image.")
    config = ConfigField(required=False, default=dict)
    description = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    scheduled_at = DateTimeField(required=False, allow_null=True)

    def __init__(self, *args, applications=None, packages=None, **kwargs):
        super().__init__(*args, **kwargs)
        if applications is not None:
            self.fields["application"].queryset = applications
        if packages is not None:
            self.fields["package"].queryset = packages


class CiReleaseSerializer(ReleaseFileSerializer):
    application = serializers.CharField(max_length=63, help_text="Application name within the hook's project.")


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class RollbackSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class StepRunSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = StepRun
        fields = ["id", "step", "attempt", "status", "started_at", "finished_at", "duration_seconds", "log", "error"]


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id", "created_at", "actor", "action", "target_type", "target_id", "target_repr", "project_id",
            "release_id", "from_state", "to_state", "before", "after", "message", "correlation_id", "prev_hash", "hash",
            "key_id",
        ]


class MiddlewareInstanceSerializer(serializers.ModelSerializer):
    """An instance as anyone who sees its project may: secrets are masked in its connection settings."""

    project = serializers.CharField(source="application.project.slug", read_only=True)
    name = serializers.CharField(source="application.name", read_only=True)
    image = serializers.CharField(source="application.image", read_only=True)
    connection_secret = serializers.SerializerMethodField(help_text="The Secret users of the instance get as env.")
    connection = serializers.SerializerMethodField(help_text="The settings in that Secret, secrets masked.")
    environments = serializers.SerializerMethodField(help_text="Where it has been deployed (and has credentials).")
    consumers = serializers.SerializerMethodField(help_text="Applications that use it.")

    class Meta:
        model = MiddlewareInstance
        fields = ["id", "project", "name", "template", "variables", "application_id", "image", "connection_secret",
                  "connection", "environments", "consumers", "created_at"]
        read_only_fields = fields

    def get_connection_secret(self, instance: MiddlewareInstance) -> str:
        return middleware.connection_secret_name(instance.application.name)

    def get_connection(self, instance: MiddlewareInstance) -> dict[str, str]:
        return middleware.connection_settings_masked(
            instance.spec, host=instance.application.name, variables=instance.variables
        )

    def get_environments(self, instance: MiddlewareInstance) -> list[str]:
        return sorted(credentials.environment.name for credentials in instance.credentials.all())

    def get_consumers(self, instance: MiddlewareInstance) -> list[str]:
        return sorted(application.name for application in instance.consumers.all())


class MiddlewareInstantiateSerializer(serializers.Serializer):
    template = serializers.CharField(max_length=63, help_text="A template of GET /api/v1/middleware/templates/.")
    name = serializers.CharField(max_length=63, help_text="The instance's (and its application's) name.")
    environment = EnvironmentChoice()
    variables = serializers.JSONField(required=False, default=dict, help_text="The template's variables.")
    description = serializers.CharField(required=False, allow_blank=True, max_length=4000)


class MiddlewareReleaseSerializer(serializers.Serializer):
    environment = EnvironmentChoice()
    variables = serializers.JSONField(required=False, default=dict, help_text="Changes; the rest keep their values.")


class MiddlewareReleasedSerializer(serializers.Serializer):
    instance = MiddlewareInstanceSerializer()
    release = ReleaseDetailSerializer()


class CiTokenSerializer(serializers.ModelSerializer):
    """A CI token as its project's maintainers see it: never the token, never its hash."""

    project = serializers.CharField(source="project.slug", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True, default=None)
    expires_at = DateTimeField(read_only=True)
    revoked_at = DateTimeField(read_only=True)
    last_used_at = DateTimeField(read_only=True)
    created_at = DateTimeField(read_only=True)

    class Meta:
        model = CiToken
        fields = ["id", "project", "name", "prefix", "owner", "created_at", "expires_at", "revoked_at",
                  "last_used_at"]
        read_only_fields = fields


class CiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What uses it, e.g. jenkins-shop.")
    expires_in_days = serializers.IntegerField(
        required=False, min_value=1, help_text="Days until it stops working (default 90; at most 365)."
    )


class CiTokenCreatedSerializer(CiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown this once: only its SHA-256 is stored.")

    class Meta(CiTokenSerializer.Meta):
        fields = [*CiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields
