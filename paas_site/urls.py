from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import ObtainAuthToken

from .api import api_not_found

api_v1 = [
    path("auth/token/", ObtainAuthToken.as_view(), name="auth-token"),
    path("", include("deployments.api.urls")),
    path("", include("workflows.api.urls")),
    path("billing/", include("billing.api.urls")),
    path("dns/", include("dns.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    re_path(r"^api/(?P<path>.*)$", api_not_found),
    path("", include("workflows.console.urls")),
]
