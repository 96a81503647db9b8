from django.db import transaction
from rest_framework import viewsets

from paas_site.errors import NotAllowed

from ..models import BaseImage, Cluster, Environment
from ..selectors import (
    APPLICATION_EDITORS,
    PROJECT_MANAGERS,
    application_list,
    membership_list,
    project_list,
    project_require_role,
)
from . import filters, serializers
from .permissions import StaffWritesOthersRead


class ProjectScopedViewSet(viewsets.ModelViewSet):
    """Writes need a role in the object's project; reads follow visibility."""

    editor_roles: set[str] = PROJECT_MANAGERS
    delete_roles: set[str] = PROJECT_MANAGERS
    noun = "object"

    def _require(self, project, roles, verb) -> None:
        project_require_role(user=self.request.user, project=project, roles=roles, action=f"{verb} {self.noun}s")

    @transaction.atomic
    def perform_create(self, serializer):
        self._require(serializer.validated_data["project"], self.editor_roles, "create")
        serializer.save()

    @transaction.atomic
    def perform_update(self, serializer):
        self._require(serializer.instance.project, self.editor_roles, "change")
        serializer.save()

    @transaction.atomic
    def perform_destroy(self, instance):
        self._require(instance.project, self.delete_roles, "delete")
        instance.delete()


class ProjectViewSet(viewsets.ModelViewSet):
    serializer_class = serializers.ProjectSerializer
    filterset_fields = ["slug", "cost_center"]
    search_fields = ["slug", "name"]
    lookup_field = "slug"

    def get_queryset(self):
        return project_list(user=self.request.user)

    def perform_create(self, serializer):
        if not self.request.user.is_staff:
            raise NotAllowed("Only platform admins (staff) may create projects.")
        serializer.save()

    def perform_update(self, serializer):
        project_require_role(
            user=self.request.user, project=serializer.instance, roles=PROJECT_MANAGERS, action="change the project"
        )
        serializer.save()

    def perform_destroy(self, instance):
        if not self.request.user.is_staff:
            raise NotAllowed("Only platform admins (staff) may delete projects.")
        instance.delete()


class ProjectMembershipViewSet(ProjectScopedViewSet):
    serializer_class = serializers.ProjectMembershipSerializer
    filterset_class = filters.ProjectMembershipFilter
    noun = "membership"

    def get_queryset(self):
        return membership_list(user=self.request.user)


class ApplicationViewSet(ProjectScopedViewSet):
    serializer_class = serializers.ApplicationSerializer
    filterset_class = filters.ApplicationFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]
    editor_roles = APPLICATION_EDITORS
    noun = "application"

    def get_queryset(self):
        return application_list(user=self.request.user)


class ClusterViewSet(viewsets.ModelViewSet):
    queryset = Cluster.objects.all()
    serializer_class = serializers.ClusterSerializer
    permission_classes = [StaffWritesOthersRead]
    filterset_fields = ["name", "auth_method"]
    search_fields = ["name", "api_server"]
    lookup_field = "name"


class EnvironmentViewSet(viewsets.ModelViewSet):
    queryset = Environment.objects.select_related("cluster")
    serializer_class = serializers.EnvironmentSerializer
    permission_classes = [StaffWritesOthersRead]
    filterset_class = filters.EnvironmentFilter
    lookup_field = "name"


class BaseImageViewSet(viewsets.ModelViewSet):
    queryset = BaseImage.objects.all()
    serializer_class = serializers.BaseImageSerializer
    permission_classes = [StaffWritesOthersRead]
    filterset_fields = ["name"]
    search_fields = ["name", "display_name", "image"]
    lookup_field = "name"
