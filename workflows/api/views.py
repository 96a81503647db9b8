from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments.api import operations
from deployments.models import Application, MiddlewareInstance, Package
from deployments.permissions import Action, project_require
from deployments.selectors import application_list, package_list, project_list
from paas_site.errors import ApplicationError, NotAuthenticated

from .. import services
from ..choices import ReleaseState
from ..models import CiToken
from ..selectors import audit_event_list, release_list, release_queryset
from ..services.snapshots import release_application_changes
from . import filters, serializers


def release_detail(release_id: int) -> dict:
    release = release_queryset().get(id=release_id)
    release.waiting_reason = services.lane_wait_reason(release) if release.state == ReleaseState.APPROVED else ""
    release.application_changes = release_application_changes(release)
    return serializers.ReleaseDetailSerializer(release).data


def release_detail_response(release_id: int, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(release_detail(release_id), status=status_code)


class ApplicationOperationsViewSet(viewsets.GenericViewSet):
    """Audited operations on running applications, beside the application resource."""

    serializer_class = operations.ScaleInput

    def get_queryset(self):
        return application_list(user=self.request.user)

    @extend_schema(request=operations.ScaleInput, responses=operations.ScaleOutput)
    @action(detail=True, methods=["post"])
    def scale(self, request, pk=None):
        """Set the replicas of a running application in one environment (within autoscaling bounds)."""
        application = self.get_object()
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        environment, replicas = data.validated_data["environment"], data.validated_data["replicas"]
        before = services.application_scale(
            application=application, environment=environment, replicas=replicas, actor=request.user
        )
        return Response({"environment": environment.name, "replicas": replicas, "previous_replicas": before})

    @extend_schema(request=operations.EnvironmentInput, responses={204: None})
    @action(detail=True, methods=["post"])
    def decommission(self, request, pk=None):
        """Remove the application from one environment: its Kubernetes objects and its DNS name (maintainers)."""
        application = self.get_object()
        data = operations.EnvironmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.application_decommission(
            application=application, environment=data.validated_data["environment"], actor=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReleaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Release requests: file, decide, follow, retry, roll back."""

    filterset_class = filters.ReleaseFilter
    ordering_fields = ["id", "created_at", "state"]
    search_fields = ["version", "description", "application__name"]

    def get_queryset(self):
        return release_list(user=self.request.user)

    def get_serializer_class(self):
        return serializers.ReleaseSerializer if self.action == "list" else serializers.ReleaseDetailSerializer

    def _detail(self, release_id: int, status_code: int = status.HTTP_200_OK) -> Response:
        return release_detail_response(release_id, status_code)

    def retrieve(self, request, pk=None):
        return self._detail(self.get_object().id)

    @extend_schema(request=serializers.ReleaseFileSerializer, responses={201: serializers.ReleaseDetailSerializer})
    def create(self, request):
        data = serializers.ReleaseFileSerializer(data=request.data, applications=application_list(user=request.user),
                                                 packages=package_list(user=request.user))
        data.is_valid(raise_exception=True)
        release = services.release_file(actor=request.user, via="api", **data.validated_data)
        return self._detail(release.id, status.HTTP_201_CREATED)

    def _decide(self, request, decide):
        release = self.get_object()
        data = serializers.CommentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decide(release_id=release.id, actor=request.user, comment=data.validated_data.get("comment", ""))
        return self._detail(release.id)

    @extend_schema(request=serializers.CommentSerializer, responses=serializers.ReleaseDetailSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._decide(request, services.approval_grant)

    @extend_schema(request=serializers.CommentSerializer, responses=serializers.ReleaseDetailSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._decide(request, services.approval_reject)

    @extend_schema(request=None, responses=serializers.ReleaseDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        services.release_cancel(release_id=self.get_object().id, actor=request.user)
        return self._detail(pk)

    @extend_schema(request=None, responses=serializers.ReleaseDetailSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        services.release_retry(release_id=self.get_object().id, actor=request.user)
        return self._detail(pk)

    @extend_schema(request=serializers.RollbackSerializer, responses={201: serializers.ReleaseDetailSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """File a new release that re-applies what ran before this (succeeded) release."""
        data = serializers.RollbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        release = services.release_rollback(release_id=self.get_object().id, actor=request.user, **data.validated_data)
        return self._detail(release.id, status.HTTP_201_CREATED)

    @extend_schema(responses=serializers.StepRunSerializer(many=True))
    @action(detail=True, methods=["get"])
    def steps(self, request, pk=None):
        steps = self.get_object().steps.order_by("started_at", "id")
        return Response(serializers.StepRunSerializer(steps, many=True).data)

    @extend_schema(responses=serializers.AuditEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def audit(self, request, pk=None):
        events = audit_event_list(user=request.user).filter(release_id=self.get_object().id).order_by("id")
        page = self.paginate_queryset(events)
        return self.get_paginated_response(serializers.AuditEventSerializer(page, many=True).data)


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = serializers.AuditEventSerializer
    filterset_class = filters.AuditEventFilter
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        return audit_event_list(user=self.request.user).order_by("-id")


class CiHookView(APIView):
    """``POST /api/v1/hooks/ci/{project}/``: CI files a release with a CI token of the project.

    Send ``Authorization: Bearer <token>``. Unknown projects and bad, revoked or
    expired tokens get the same 401, so the hook reveals nothing. The release is
    the token owner's: 403 once the owner may no longer file releases there.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request) -> str:
        return 'Bearer realm="slipway-ci"'

    @extend_schema(request=serializers.CiReleaseSerializer, responses={201: serializers.ReleaseDetailSerializer})
    def post(self, request, project: str):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            ci_token = services.ci_token_authenticate(project_slug=project,
                                                      token=token if scheme.lower() == "bearer" else "")
        except NotAuthenticated as exc:
            raise AuthenticationFailed(exc.message) from None
        data = serializers.CiReleaseSerializer(data=request.data,
                                               packages=Package.objects.filter(project=ci_token.project))
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        application = Application.objects.filter(project=ci_token.project, name=fields.pop("application")).first()
        if application is None:
            raise ApplicationError("application: no such application in this project.",
                                   extra={"fields": {"application": ["no such application in this project."]}})
        try:
            release = services.ci_token_release_file(ci_token=ci_token, application=application, **fields)
        except NotAuthenticated as exc:  # revoked while the request was read
            raise AuthenticationFailed(exc.message) from None
        return release_detail_response(release.id, status.HTTP_201_CREATED)





class MiddlewareInstanceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A project's middleware instances: create one from the catalog, release it, read its connection settings."""

    serializer_class = serializers.MiddlewareInstanceSerializer
    lookup_field = "application__name"
    lookup_url_kwarg = "name"

    def project(self):
        """The project of the URL, if the user may see it (404 otherwise)."""
        return get_object_or_404(project_list(user=self.request.user), slug=self.kwargs["project"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no project
            return MiddlewareInstance.objects.none()
        return MiddlewareInstance.objects.filter(application__project=self.project()).select_related(
            "application__project"
        ).prefetch_related("credentials__environment", "consumers").order_by("application__name")

    def _released(self, instance: MiddlewareInstance, release_id: int) -> Response:
        body = {"instance": self.get_serializer(instance).data, "release": release_detail(release_id)}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=serializers.MiddlewareInstantiateSerializer,
                   responses={201: serializers.MiddlewareReleasedSerializer})
    def create(self, request, project=None):
        """Create an instance and file its first release to the environment (approval policy applies)."""
        data = serializers.MiddlewareInstantiateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        instance, release = services.middleware_instantiate(actor=request.user, project=self.project(),
                                                            **data.validated_data)
        return self._released(instance, release.id)

    @extend_schema(request=serializers.MiddlewareReleaseSerializer,
                   responses={201: serializers.MiddlewareReleasedSerializer})
    @action(detail=True, methods=["post"])
    def release(self, request, project=None, name=None):
        """File a release of the instance to an environment, with changed variables if given."""
        instance = self.get_object()
        data = serializers.MiddlewareReleaseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        release = services.middleware_release(actor=request.user, instance=instance, **data.validated_data)
        return self._released(instance, release.id)


class CiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A project's CI tokens, for its maintainers: create one (shown once), list them, revoke one."""

    serializer_class = serializers.CiTokenSerializer
    ordering_fields = ["id", "created_at", "expires_at"]

    def project(self):
        """The project of the URL: 404 if the user may not see it, 403 if they may not manage its tokens."""
        project = get_object_or_404(project_list(user=self.request.user), slug=self.kwargs["project"])
        project_require(self.request.user, Action.MANAGE_CI_TOKENS, project)
        return project

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no project
            return CiToken.objects.none()
        return CiToken.objects.filter(project=self.project()).select_related("project", "owner").order_by("-id")

    @extend_schema(request=serializers.CiTokenCreateSerializer, responses={201: serializers.CiTokenCreatedSerializer})
    def create(self, request, project=None):
        """Create a token owned by you: releases it files are yours. The token is in this answer only."""
        data = serializers.CiTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ci_token, token = services.ci_token_create(actor=request.user, project=self.project(), **data.validated_data)
        ci_token.token = token
        return Response(serializers.CiTokenCreatedSerializer(ci_token).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=serializers.CiTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, project=None, pk=None):
        """Revoke the token: the hook refuses it from now on (401)."""
        ci_token = services.ci_token_revoke(actor=request.user, token_id=self.get_object().id)
        return Response(serializers.CiTokenSerializer(ci_token).data)
