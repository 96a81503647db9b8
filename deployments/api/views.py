from dataclasses import asdict

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from paas_site.errors import NotAllowed

from .. import services
from ..models import BaseImage, Cluster, Environment
from ..selectors import (
    APPLICATION_EDITORS,
    PROJECT_MANAGERS,
    PROJECT_MEMBERS,
    application_list,
    membership_list,
    project_list,
    project_require_role,
    user_is_platform_admin,
)
from . import filters, operations, serializers
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
        if not user_is_platform_admin(self.request.user):
            raise NotAllowed("Only platform admins may create projects.")
        serializer.save()

    def perform_update(self, serializer):
        project_require_role(
            user=self.request.user, project=serializer.instance, roles=PROJECT_MANAGERS, action="change the project"
        )
        serializer.save()

    def perform_destroy(self, instance):
        if not user_is_platform_admin(self.request.user):
            raise NotAllowed("Only platform admins may delete projects.")
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

    def _query(self, serializer_class):
        query = serializer_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data

    @extend_schema(parameters=[operations.PodsQuery], responses=operations.PodSerializer(many=True))
    @action(detail=True, methods=["get"])
    def pods(self, request, pk=None):
        """The application's pods in one environment: phase, readiness, restarts."""
        application = self.get_object()
        environment = self._query(operations.PodsQuery)["environment"]
        pods = services.application_pods(application_id=application.id, environment_id=environment.id)
        return Response(operations.PodSerializer([asdict(pod) for pod in pods], many=True).data)

    @extend_schema(
        parameters=[operations.LogsQuery, OpenApiParameter("pod", str, OpenApiParameter.PATH)],
        responses=operations.LogsOutput,
    )
    @action(detail=True, methods=["get"], url_path=r"pods/(?P<pod>[a-z0-9][-a-z0-9.]{0,252})/logs")
    def logs(self, request, pk=None, pod=None):
        """The last lines of one pod's log (members of the project only)."""
        application = self.get_object()
        project_require_role(user=request.user, project=application.project, roles=PROJECT_MEMBERS, action="read logs")
        query = self._query(operations.LogsQuery)
        text = services.pod_logs(
            application_id=application.id, environment_id=query["environment"].id, pod=pod, tail=query["tail"]
        )
        return Response({"pod": pod, "lines": text.splitlines()})


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
