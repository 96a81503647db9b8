from copy import copy

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from ..models import Application, BaseImage, Cluster, Environment, Package, Project, ProjectMembership
from ..selectors import project_list


class ModelCleanSerializer(serializers.ModelSerializer):
    """Runs the model's own validation (field validators and ``clean()``).

    The rules live once, on the model, and hold for the API and the admin
    alike; values ``clean()`` derives (e.g. a kubeconfig's server) flow back.
    """

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
    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    user = serializers.SlugRelatedField(slug_field="username", queryset=get_user_model().objects.all())

    class Meta:
        model = ProjectMembership
        fields = ["id", "project", "user", "role", "created_at"]

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
    cluster = serializers.SlugRelatedField(slug_field="name", queryset=Cluster.objects.all())

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


class ApplicationSerializer(ModelCleanSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    base_image = serializers.SlugRelatedField(
        slug_field="name", queryset=BaseImage.objects.all(), required=False, allow_null=True
    )
    allowed_callers = serializers.SlugRelatedField(
        slug_field="name", many=True, required=False, queryset=Application.objects.all(),
        help_text="Names of applications of the same project that may call this one.",
    )

    class Meta:
        model = Application
        fields = [
            "id", "project", "name", "description", "base_image", "image", "port", "health_path",
            "cpu_request", "cpu_limit", "memory_request", "memory_limit", "replicas",
            "autoscaling_min", "autoscaling_max", "autoscaling_target_cpu", "exposed", "smoke_check_url", "allowed_callers",
            "created_at", "updated_at",
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
        if project is None and isinstance(slug, str):
            project = self.fields["project"].queryset.filter(slug=slug).first()
        self.fields["allowed_callers"].child_relation.queryset = (
            Application.objects.filter(project=project) if project else Application.objects.none()
        )
        return super().to_internal_value(data)

    def validate(self, attrs):
        if self.instance and "project" in attrs and attrs["project"] != self.instance.project:
            raise serializers.ValidationError({"project": "an application cannot move to another project."})
        attrs = super().validate(attrs)
        if self.instance and self.instance in attrs.get("allowed_callers", []):
            raise serializers.ValidationError({"allowed_callers": "an application need not allow itself."})
        return attrs


class PackageSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.slug", read_only=True)
    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True, default=None)

    class Meta:
        model = Package
        fields = ["id", "project", "filename", "size", "sha256", "uploaded_by", "created_at"]
        read_only_fields = fields


class PackageUploadSerializer(serializers.Serializer):
    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    file = serializers.FileField(help_text="The package, e.g. app-1.2.war; its name is its file name in the image.")

    def __init__(self, *args, projects=None, **kwargs):
        super().__init__(*args, **kwargs)
        if projects is not None:
            self.fields["project"].queryset = projects
