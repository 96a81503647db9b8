"""The group mapping over the API: ``/api/v1/auth/group-mappings/``, platform admins only (read and write).

Writes call ``workflows.services.directory`` (checked and audited there); the serializer only parses.
"""
from rest_framework import serializers, viewsets
from rest_framework.permissions import BasePermission

from deployments.models import Project
from deployments.permissions import user_is_platform_admin

from ..models import GroupRoleMapping
from ..services import directory


class PlatformAdminsOnly(BasePermission):
    message = "Only platform admins may read or change the group mapping."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and user_is_platform_admin(request.user))


class GroupRoleMappingSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", queryset=Project.objects.all(), required=False,
                                           allow_null=True)

    class Meta:
        model = GroupRoleMapping
        fields = ["id", "source", "group", "grant", "project", "role"]
        validators: list = []  # the service checks (and names the field); the constraint is its backstop


class GroupRoleMappingViewSet(viewsets.ModelViewSet):
    """Rules from directory / IdP groups to Slipway roles, applied at every sign-in through LDAP or OIDC."""

    queryset = GroupRoleMapping.objects.select_related("project")
    serializer_class = GroupRoleMappingSerializer
    permission_classes = [PlatformAdminsOnly]
    filterset_fields = ["source", "group", "grant", "role"]

    def perform_create(self, serializer):
        serializer.instance = directory.group_mapping_create(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = directory.group_mapping_change(actor=self.request.user, mapping_id=serializer.instance.id,
                                                             **serializer.validated_data)

    def perform_destroy(self, instance):
        directory.group_mapping_delete(actor=self.request.user, mapping_id=instance.id)
