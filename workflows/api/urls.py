from django.urls import path
from rest_framework.routers import SimpleRouter

from . import directory, views

router = SimpleRouter()
router.register("auth/group-mappings", directory.GroupRoleMappingViewSet, basename="group-mapping")
router.register("applications", views.ApplicationOperationsViewSet, basename="application-operations")
router.register("releases", views.ReleaseViewSet, basename="release")
router.register("audit", views.AuditEventViewSet, basename="audit-event")
router.register(r"projects/(?P<project>[a-z0-9-]+)/middleware", views.MiddlewareInstanceViewSet,
                basename="middleware-instance")
router.register(r"projects/(?P<project>[a-z0-9-]+)/ci-tokens", views.CiTokenViewSet, basename="ci-token")

urlpatterns = [
    path("hooks/ci/<slug:project>/", views.CiHookView.as_view(), name="ci-hook"),
    *router.urls,
]
