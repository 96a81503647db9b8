from rest_framework import viewsets

from deployments.api.permissions import StaffWritesOthersRead
from deployments.api.views import AuditedModelViewSet

from ..selectors import record_list, zone_list
from . import filters, serializers


class ZoneViewSet(AuditedModelViewSet):
    """DNS zones: every signed-in user reads them, platform admins change them. The API key is never returned."""

    serializer_class = serializers.ZoneSerializer
    permission_classes = [StaffWritesOthersRead]
    filterset_class = filters.ZoneFilter
    search_fields = ["name", "description"]
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"

    def get_queryset(self):
        return zone_list()


class RecordViewSet(viewsets.ReadOnlyModelViewSet):
    """The records Slipway published, and whether DNS agrees; those of your projects' applications."""

    serializer_class = serializers.RecordSerializer
    filterset_class = filters.RecordFilter
    search_fields = ["name", "content"]
    ordering_fields = ["name", "type", "status", "updated_at"]

    def get_queryset(self):
        return record_list(user=self.request.user)
