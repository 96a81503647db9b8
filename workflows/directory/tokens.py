"""API tokens and sessions of directory accounts re-check the directory (see ``ldap.directory_still_enabled``)."""
from django.conf import settings
from django.contrib.auth import logout
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from rest_framework import exceptions

DISABLED = "Your directory account is disabled: its API tokens were revoked."
METHOD_OFF = "The way this account signs in is turned off: its API tokens do not work."


class DirectoryTokenAuthentication(TokenAuthentication):
    """knox's token authentication; a token works only while its account's sign-in method is on (local accounts,
    LDAP, OpenID Connect), and a token of an LDAP account stops working once the directory disables it."""

    def authenticate_credentials(self, token):
        from ..services.directory import sign_in_method_enabled  # not at import: DRF loads this with its settings

        user, auth_token = super().authenticate_credentials(token)
        if not sign_in_method_enabled(user):
            raise exceptions.AuthenticationFailed(METHOD_OFF)
        if settings.SLIPWAY_LDAP_ENABLED:
            from .ldap import directory_still_enabled

            if not directory_still_enabled(user):
                raise exceptions.AuthenticationFailed(DISABLED)
        return user, auth_token


class DirectoryTokenScheme(KnoxTokenScheme):
    """The OpenAPI schema describes it as knox's token (it is one)."""

    target_class = "workflows.directory.tokens.DirectoryTokenAuthentication"


class DirectoryRecheckMiddleware:
    """A console or admin session of an LDAP account ends once the directory disables the account."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.SLIPWAY_LDAP_ENABLED and request.user.is_authenticated:
            from .ldap import directory_still_enabled

            if not directory_still_enabled(request.user):
                logout(request)
        return self.get_response(request)
