from rest_framework.permissions import SAFE_METHODS, BasePermission

from ..selectors import user_is_platform_admin


class StaffWritesOthersRead(BasePermission):
    """Platform reference data: every signed-in user reads, platform admins write."""

    message = "Only platform admins may change this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and (
            request.method in SAFE_METHODS or user_is_platform_admin(request.user)
        ))
