"""OpenID Connect sign-in: mozilla-django-oidc's authorization-code flow with PKCE (S256), state and nonce,
its endpoints read from the issuer's discovery document, and Slipway's group mapping.

- Endpoints: ``{SLIPWAY_OIDC_ISSUER}/.well-known/openid-configuration``, fetched when first needed and kept
  for an hour; its ``issuer`` must be the configured one (a document naming another issuer is refused).
- The ID token must come from that issuer, for this client (``aud``), with the nonce of this sign-in; the
  state must be the one this browser session started (a wrong one is refused, not an error page).
- Groups: the claim ``SLIPWAY_OIDC_GROUPS_CLAIM`` (``groups``) from the userinfo answer, or from the ID
  token when userinfo lacks it. An account is found by its subject (``sub``), never by e-mail address, and
  its username (``SLIPWAY_OIDC_USERNAME_CLAIM``) never takes over an existing local account.

The IdP is configured by the operator, not a user, so these requests use ``requests`` directly with the
configured CA (``SLIPWAY_OIDC_CA_FILE``) rather than the outbound guard for user-given URLs.
"""
import logging
import threading
import time
from typing import Any

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.views.generic import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from ..choices import SignInMethod
from ..services import directory

logger = logging.getLogger(__name__)

DISCOVERY_SECONDS = 3600
ENDPOINTS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}
_discovered: dict[str, tuple[float, dict[str, Any]]] = {}
_lock = threading.Lock()


class ProviderUnavailable(ImproperlyConfigured):
    """The discovery document could not be read, or it is not the configured issuer's."""


def discovery() -> dict[str, Any]:
    """The issuer's discovery document (cached for ``DISCOVERY_SECONDS``)."""
    issuer = settings.SLIPWAY_OIDC_ISSUER
    with _lock:
        cached = _discovered.get(issuer)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            response = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=settings.OIDC_TIMEOUT,
                                    verify=settings.OIDC_VERIFY_SSL, allow_redirects=False)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            logger.warning("OpenID discovery at %s failed: %s", issuer, exc)
            raise ProviderUnavailable(f"The OpenID provider {issuer} cannot be reached.") from None
        if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != issuer:
            raise ProviderUnavailable(f"The discovery document of {issuer} names another issuer.")
        missing = [key for key in ENDPOINTS.values() if not document.get(key)]
        if missing:
            raise ProviderUnavailable(f"The discovery document of {issuer} lacks {', '.join(missing)}.")
        _discovered[issuer] = (time.monotonic() + DISCOVERY_SECONDS, document)
        return document


def oidc_setting(attr: str, *args):
    if attr in ENDPOINTS:
        return discovery()[ENDPOINTS[attr]]
    return import_from_settings(attr, *args)


def _endpoint(name: str) -> property:
    return property(lambda self: discovery()[ENDPOINTS[name]])


class DirectoryOIDCBackend(OIDCAuthenticationBackend):
    """Endpoints are read when a sign-in needs them: a provider that is down never stops other sign-ins."""

    get_settings = staticmethod(oidc_setting)
    OIDC_OP_TOKEN_ENDPOINT = _endpoint("OIDC_OP_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = _endpoint("OIDC_OP_USER_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = _endpoint("OIDC_OP_JWKS_ENDPOINT")
    OIDC_RP_IDP_SIGN_KEY = None

    def __init__(self, *args, **kwargs):
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.UserModel = get_user_model()

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if str(payload.get("iss", "")).rstrip("/") != settings.SLIPWAY_OIDC_ISSUER:
            raise SuspiciousOperation("The ID token is from another issuer.")
        if settings.OIDC_RP_CLIENT_ID not in audiences or (len(audiences) > 1 and payload.get("azp")
                                                           != settings.OIDC_RP_CLIENT_ID):
            raise SuspiciousOperation("The ID token is for another client.")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        claims = super().get_userinfo(access_token, id_token, payload)
        if claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo answer is about another subject.")
        groups_claim = settings.SLIPWAY_OIDC_GROUPS_CLAIM
        if groups_claim not in claims and groups_claim in payload:
            claims[groups_claim] = payload[groups_claim]
        return claims

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(directory_account__source=SignInMethod.OIDC,
                                             directory_account__subject=claims.get("sub", ""))

    def create_user(self, claims):
        username = str(claims.get(settings.SLIPWAY_OIDC_USERNAME_CLAIM) or "").strip()
        if not username or len(username) > 150:
            raise SuspiciousOperation(f"The {settings.SLIPWAY_OIDC_USERNAME_CLAIM} claim is missing or too long.")
        with transaction.atomic():
            if get_user_model().objects.filter(username__iexact=username).exists():
                raise SuspiciousOperation(f"{username!r} is an account of another sign-in method.")
            user = self.UserModel.objects.create_user(username, email=claims.get("email") or "")  # no password
            self._apply(user, claims, created=True)
        return user

    def update_user(self, user, claims):
        self._apply(user, claims, created=False)
        return user

    def _apply(self, user, claims, *, created: bool) -> None:
        groups = claims.get(settings.SLIPWAY_OIDC_GROUPS_CLAIM) or []
        if isinstance(groups, str):
            groups = [groups]
        try:
            directory.directory_sign_in(user=user, source=SignInMethod.OIDC, subject=claims["sub"],
                                        groups=[str(group) for group in groups], created=created)
        except directory.AccountNotLinked as exc:
            raise SuspiciousOperation(exc.message) from None
        user.refresh_from_db()
        user.slipway_groups = sorted(groups)

    def authenticate(self, request, **kwargs):
        user = super().authenticate(request, **kwargs)
        return user if user is not None and user.is_active else None

    def get_user(self, user_id):
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None


class OpenIDView:
    """Both views: 404 unless OpenID Connect is configured; endpoints from the discovery document."""

    get_settings = staticmethod(oidc_setting)

    def dispatch(self, request, *args, **kwargs):
        if not settings.SLIPWAY_OIDC_ENABLED:
            raise Http404("OpenID Connect sign-in is not configured.")
        return super().dispatch(request, *args, **kwargs)


class SignInStart(OpenIDView, OIDCAuthenticationRequestView):
    """``/oidc/authenticate/``: to the provider, with state, nonce and a PKCE challenge kept in the session."""

    OIDC_OP_AUTH_ENDPOINT = _endpoint("OIDC_OP_AUTHORIZATION_ENDPOINT")  # read in get(), where a failure is answered

    def __init__(self, **kwargs):
        View.__init__(self, **kwargs)
        self.OIDC_RP_CLIENT_ID = getattr(settings, "OIDC_RP_CLIENT_ID", "")

    def get(self, request):
        try:
            return super().get(request)
        except ProviderUnavailable as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("console:login"))


class SignInCallback(OpenIDView, OIDCAuthenticationCallbackView):
    """``/oidc/callback/``: the provider's answer; a wrong state or nonce, or a refusal, back to the login page."""

    def get(self, request):
        try:
            return super().get(request)
        except (SuspiciousOperation, ProviderUnavailable, requests.RequestException) as exc:
            logger.warning("OpenID sign-in refused: %s", exc)
            return self.login_failure()

    def login_failure(self):
        messages.error(self.request, f"Signing in with {settings.SLIPWAY_OIDC_NAME} did not succeed; try again.")
        return HttpResponseRedirect(reverse("console:login"))
