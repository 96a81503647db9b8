from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from deployments.api import operations
from deployments.selectors import application_list

from .. import services


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
