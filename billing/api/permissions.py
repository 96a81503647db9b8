from rest_framework.permissions import SAFE_METHODS, BasePermission

from ..selectors import user_manages_billing


class FinanceWritesMembersRead(BasePermission):
    """Signed-in users read (what their queryset shows them); finance and platform admins write."""

    message = "Only finance or platform admins may change prices and budgets."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and (
            request.method in SAFE_METHODS or user_manages_billing(request.user)
        ))
