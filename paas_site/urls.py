from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from workflows.api.tokens import ApiTokenViewSet, TokenSignInView
from workflows.directory.oidc import SignInCallback, SignInStart

from .api import api_not_found

tokens = SimpleRouter()
tokens.register("auth/tokens", ApiTokenViewSet, basename="api-token")

api_v1 = [
    path("auth/token/", TokenSignInView.as_view(), name="auth-token"),
    *tokens.urls,
    path("", include("deployments.api.urls")),
    path("", include("workflows.api.urls")),
    path("billing/", include("billing.api.urls")),
    path("dns/", include("dns.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # the split view serves its script as a file: the CSP allows no inline script
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    re_path(r"^api/(?P<path>.*)$", api_not_found),
    path("oidc/authenticate/", SignInStart.as_view(), name="oidc-authenticate"),
    path("oidc/callback/", SignInCallback.as_view(), name="oidc-callback"),
    path("", include("workflows.console.urls")),
]
