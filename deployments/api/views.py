from dataclasses import asdict

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from paas_site.errors import NotAllowed, NotFound

from .. import changes, memberships, services
from ..middleware import TEMPLATES
from ..models import BaseImage, Cluster, Environment
from ..permissions import Action, project_require, project_require_each
from ..selectors import application_list, membership_list, package_list, project_list, user_is_platform_admin
from . import filters, operations, serializers
from .permissions import StaffWritesOthersRead


class AuditedModelViewSet(viewsets.ModelViewSet):
    """Every write is checked by ``authorize`` and recorded in the audit trail, in one transaction."""

    def authorize(self, verb: str, obj) -> None:
        """Raise ``NotAllowed`` when the user may not ``verb`` (create/change/delete) ``obj``."""

    def authorize_change(self, instance, data: dict) -> None:
        """Raise ``NotAllowed`` when the user may not change ``instance`` with ``data``."""
        self.authorize("change", instance)

    @transaction.atomic
    def perform_create(self, serializer):
        self.authorize("create", serializer.validated_data)
        obj = serializer.save()
        changes.recorder().object_created(actor=self.request.user, obj=obj)

    @transaction.atomic
    def perform_update(self, serializer):
        self.authorize_change(serializer.instance, serializer.validated_data)
        before = changes.recorder().snapshot(serializer.instance)
        obj = serializer.save()
        changes.recorder().object_changed(actor=self.request.user, obj=obj, before=before)

    @transaction.atomic
    def perform_destroy(self, instance):
        self.authorize("delete", instance)
        changes.deletion_record(actor=self.request.user, obj=instance)
        instance.delete()


class ProjectScopedViewSet(AuditedModelViewSet):
    """Writes need the right in the object's project, and a change also in the project it would end up in;
    reads follow visibility."""

    edit_action: Action = Action.MANAGE_MEMBERSHIPS
    delete_action: Action = Action.MANAGE_MEMBERSHIPS

    def authorize(self, verb: str, obj) -> None:
        project = obj["project"] if isinstance(obj, dict) else obj.project
        project_require(self.request.user, self.delete_action if verb == "delete" else self.edit_action, project)

    def authorize_change(self, instance, data: dict) -> None:
        project_require_each(self.request.user, self.edit_action, [instance.project, data.get("project")])


class ProjectViewSet(AuditedModelViewSet):
    serializer_class = serializers.ProjectSerializer
    filterset_fields = ["slug", "cost_center"]
    search_fields = ["slug", "name"]
    lookup_field = "slug"

    def get_queryset(self):
        return project_list(user=self.request.user)

    def authorize(self, verb: str, obj) -> None:
        if verb == "change":
            project_require(self.request.user, Action.CHANGE_PROJECT, obj)
        elif not user_is_platform_admin(self.request.user):
            raise NotAllowed(f"Only platform admins may {verb} projects.")


class ProjectMembershipViewSet(ProjectScopedViewSet):
    serializer_class = serializers.ProjectMembershipSerializer
    filterset_class = filters.ProjectMembershipFilter

    def get_queryset(self):
        return membership_list(user=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = memberships.membership_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = memberships.membership_change(
            actor=self.request.user, membership_id=serializer.instance.id, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        memberships.membership_delete(actor=self.request.user, membership_id=instance.id)


class ApplicationViewSet(ProjectScopedViewSet):
    serializer_class = serializers.ApplicationSerializer
    filterset_class = filters.ApplicationFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]
    edit_action = Action.EDIT_APPLICATION
    delete_action = Action.DELETE_APPLICATION

    def get_queryset(self):
        return application_list(user=self.request.user)

    def _query(self, serializer_class):
        query = serializer_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data

    @extend_schema(parameters=[operations.EnvironmentInput], responses=operations.PodSerializer(many=True))
    @action(detail=True, methods=["get"])
    def pods(self, request, pk=None):
        """The application's pods in one environment: phase, readiness, restarts."""
        application = self.get_object()
        environment = self._query(operations.EnvironmentInput)["environment"]
        pods = services.application_pods(actor=request.user, application_id=application.id,
                                         environment_id=environment.id)
        return Response(operations.PodSerializer([asdict(pod) for pod in pods], many=True).data)

    @extend_schema(
        parameters=[operations.LogsQuery, OpenApiParameter("pod", str, OpenApiParameter.PATH)],
        responses=operations.LogsOutput,
    )
    @action(detail=True, methods=["get"], url_path=r"pods/(?P<pod>[a-z0-9][-a-z0-9.]{0,252})/logs")
    def logs(self, request, pk=None, pod=None):
        """The last lines of one pod's log (members of the project only)."""
        application = self.get_object()
        query = self._query(operations.LogsQuery)
        text = services.pod_logs(
            actor=request.user, application_id=application.id, environment_id=query["environment"].id, pod=pod, tail=query["tail"]
        )
        return Response({"pod": pod, "lines": text.splitlines()})


class ClusterViewSet(AuditedModelViewSet):
    queryset = Cluster.objects.all()
    serializer_class = serializers.ClusterSerializer
    permission_classes = [StaffWritesOthersRead]
    filterset_fields = ["name", "auth_method"]
    search_fields = ["name", "api_server"]
    lookup_field = "name"


class EnvironmentViewSet(AuditedModelViewSet):
    queryset = Environment.objects.select_related("cluster")
    serializer_class = serializers.EnvironmentSerializer
    permission_classes = [StaffWritesOthersRead]
    filterset_class = filters.EnvironmentFilter
    lookup_field = "name"


class BaseImageViewSet(AuditedModelViewSet):
    queryset = BaseImage.objects.all()
    serializer_class = serializers.BaseImageSerializer
    permission_classes = [StaffWritesOthersRead]
    filterset_fields = ["name"]
    search_fields = ["name", "display_name", "image"]
    lookup_field = "name"


class MiddlewareTemplateViewSet(viewsets.GenericViewSet):
    """The middleware catalog: templates a project can instantiate (``/projects/{slug}/middleware/``)."""

    serializer_class = serializers.MiddlewareTemplateSerializer
    pagination_class = None
    filter_backends: list = []
    lookup_field = "name"

    def list(self, request):
        return Response(self.get_serializer(TEMPLATES.values(), many=True).data)

    @extend_schema(parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH)])
    def retrieve(self, request, name=None):
        if name not in TEMPLATES:
            raise NotFound(f"The middleware catalog has no template {name!r}.")
        return Response(self.get_serializer(TEMPLATES[name]).data)
class PackageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Application packages uploaded to Slipway, for releases of applications built from a base image."""

    serializer_class = serializers.PackageSerializer
    filterset_fields = ["sha256", "filename"]
    ordering_fields = ["id", "created_at"]
    parser_classes = [MultiPartParser]

    def get_queryset(self):
        queryset = package_list(user=self.request.user)
        project = self.request.query_params.get("project")
        return queryset.filter(project__slug=project) if project else queryset

    @extend_schema(request=serializers.PackageUploadSerializer, responses={201: serializers.PackageSerializer})
    def create(self, request):
        """Upload a package (multipart: ``project``, ``file``); its size and sha256 are recorded."""
        data = serializers.PackageUploadSerializer(data=request.data, projects=project_list(user=request.user))
        data.is_valid(raise_exception=True)
        package = services.package_upload(actor=request.user, **data.validated_data)
        return Response(serializers.PackageSerializer(package).data, status=status.HTTP_201_CREATED)
