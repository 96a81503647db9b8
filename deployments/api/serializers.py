from copy import copy

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from paas_site.api import DateTimeField, SlugRelatedField

from ..middleware import MiddlewareTemplate
from ..models import Application, BaseImage, Cluster, Environment, MiddlewareInstance, Package, Project, ProjectMembership
from ..selectors import project_list


class ModelCleanSerializer(serializers.ModelSerializer):
    """Runs the model's own validation (field validators and ``clean()``).

    The rules live once, on the model, and hold for the API and the admin
    alike; values ``clean()`` derives (e.g. a kubeconfig's server) flow back.
    """

    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping, models.DateTimeField: DateTimeField}

    def validate(self, attrs):
        attrs = super().validate(attrs)
        model = self.Meta.model
        candidate = copy(self.instance) if self.instance else model()
        many_to_many = {field.name for field in model._meta.many_to_many}
        for name, value in attrs.items():
            if name not in many_to_many:
                setattr(candidate, name, value)
        try:
            candidate.full_clean(validate_unique=False, validate_constraints=False)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        for field in model._meta.concrete_fields:
            if field.name in self.fields and not self.fields[field.name].read_only:
                attrs[field.name] = getattr(candidate, field.name)
        return attrs


class ProjectSerializer(ModelCleanSerializer):
    class Meta:
        model = Project
        fields = ["id", "slug", "name", "cost_center", "description", "created_at"]


class ProjectMembershipSerializer(ModelCleanSerializer):
    project = SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    user = SlugRelatedField(slug_field="username", queryset=get_user_model().objects.all())

    class Meta:
        model = ProjectMembership
        fields = ["id", "project", "user", "role", "created_at", "via_mapping"]
        read_only_fields = ["via_mapping"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["project"].queryset = project_list(user=request.user)


class ClusterSerializer(ModelCleanSerializer):
    """Credentials are write-only: they go in, and never come back out."""

    token = serializers.CharField(write_only=True, required=False, allow_blank=True, style={"input_type": "password"})
    kubeconfig = serializers.CharField(write_only=True, required=False, allow_blank=True)
    has_credentials = serializers.BooleanField(read_only=True)

    class Meta:
        model = Cluster
        fields = [
            "id", "name", "api_server", "auth_method", "token", "ca_certificate", "kubeconfig",
            "has_credentials", "ingress_address", "ingress_class", "labels", "created_at", "updated_at",
        ]
        extra_kwargs = {"api_server": {"required": False}}


class EnvironmentSerializer(ModelCleanSerializer):
    cluster = SlugRelatedField(slug_field="name", queryset=Cluster.objects.all())

    class Meta:
        model = Environment
        fields = [
            "id", "name", "rank", "cluster", "namespace_pattern", "required_approvals", "allow_self_approval",
            "rollout_deadline_seconds", "description", "created_at", "updated_at",
        ]


class BaseImageSerializer(ModelCleanSerializer):
    class Meta:
        model = BaseImage
        fields = ["id", "name", "display_name", "image", "app_path", "config_path", "default_port", "health_path",
                  "description"]


@extend_schema_field(OpenApiTypes.STR)
class MiddlewareInstanceChoice(SlugRelatedField):
    """A middleware instance, named by its application's name."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="application__name", **kwargs)

    def to_representation(self, obj: MiddlewareInstance) -> str:
        return obj.application.name


class ApplicationSerializer(ModelCleanSerializer):
    project = SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    base_image = SlugRelatedField(
        slug_field="name", queryset=BaseImage.objects.all(), required=False, allow_null=True
    )
    allowed_callers = SlugRelatedField(
        slug_field="name", many=True, required=False, queryset=Application.objects.all(),
        help_text="Names of applications of the same project that may call this one.",
    )
    uses_middleware = MiddlewareInstanceChoice(
        many=True, required=False, queryset=MiddlewareInstance.objects.all(),
        help_text="Names of middleware instances of the same project this application connects to: their "
                  "connection settings become its environment variables.",
    )

    class Meta:
        model = Application
        fields = [
            "id", "project", "name", "description", "base_image", "image", "port", "health_path",
            "cpu_request", "cpu_limit", "memory_request", "memory_limit", "replicas",
            "autoscaling_min", "autoscaling_max", "autoscaling_target_cpu", "exposed", "smoke_check_url", "allowed_callers",
            "uses_middleware", "created_at", "updated_at",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["project"].queryset = project_list(user=request.user)

    def to_internal_value(self, data):
        # Caller names are unique only within a project: resolve them there.
        project = self.instance.project if self.instance else None
        slug = data.get("project") if hasattr(data, "get") else None
        if project is None and isinstance(slug, str) and "\x00" not in slug:  # the field itself refuses a NUL
            project = self.fields["project"].queryset.filter(slug=slug).first()
        self.fields["allowed_callers"].child_relation.queryset = (
            Application.objects.filter(project=project) if project else Application.objects.none()
        )
        self.fields["uses_middleware"].child_relation.queryset = (
            MiddlewareInstance.objects.filter(application__project=project).select_related("application")
            if project else MiddlewareInstance.objects.none()
        )
        return super().to_internal_value(data)

    def validate(self, attrs):
        if self.instance and "project" in attrs and attrs["project"] != self.instance.project:
            raise serializers.ValidationError({"project": "an application cannot move to another project."})
        attrs = super().validate(attrs)
        if self.instance and self.instance in attrs.get("allowed_callers", []):
            raise serializers.ValidationError({"allowed_callers": "an application need not allow itself."})
        self._check_middleware_used(attrs.get("uses_middleware", []))
        return attrs

    def _check_middleware_used(self, instances: list[MiddlewareInstance]) -> None:
        """Their settings all become environment variables, so no two may set the same one."""
        seen: dict[str, str] = {}
        for instance in instances:
            if self.instance and instance.application_id == self.instance.id:
                raise serializers.ValidationError({"uses_middleware": "a middleware instance cannot use itself."})
            for key in instance.spec.connection_keys:
                if key in seen:
                    raise serializers.ValidationError({"uses_middleware": (
                        f"{seen[key]} and {instance.application.name} both set {key}; use one of them."
                    )})
                seen[key] = instance.application.name


class MiddlewareTemplateSerializer(serializers.Serializer):
    """A catalog entry: what an instance of it runs, what can be set, what it offers other applications."""

    name = serializers.CharField()
    display_name = serializers.CharField()
    description = serializers.CharField()
    base_image = serializers.CharField(help_text="The base image whose repository provides the image.")
    port = serializers.IntegerField()
    health_path = serializers.CharField(help_text="HTTP probe path; empty for a TCP connect probe.")
    variables = serializers.SerializerMethodField(help_text="JSON Schema of the variables, with their defaults.")
    resources = serializers.SerializerMethodField(help_text="The resources an instance gets with default variables.")
    secrets = serializers.ListField(child=serializers.CharField(), help_text="Generated per environment, never shown.")
    connection_keys = serializers.ListField(
        child=serializers.CharField(), help_text="Keys of the Secret <instance>-connection that users of it get as env."
    )

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_variables(self, template: MiddlewareTemplate) -> dict:
        return template.schema()

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_resources(self, template: MiddlewareTemplate) -> dict:
        return template.resources(template.defaults)

class PackageSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.slug", read_only=True)
    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True, default=None)

    class Meta:
        model = Package
        fields = ["id", "project", "filename", "size", "sha256", "uploaded_by", "created_at"]
        read_only_fields = fields


class PackageUploadSerializer(serializers.Serializer):
    project = SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    file = serializers.FileField(help_text="The package, e.g. app-1.2.war; its name is its file name in the image.")

    def __init__(self, *args, projects=None, **kwargs):
        super().__init__(*args, **kwargs)
        if projects is not None:
            self.fields["project"].queryset = projects
