from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("applications", views.ApplicationOperationsViewSet, basename="application-operations")
router.register("releases", views.ReleaseViewSet, basename="release")
router.register("audit", views.AuditEventViewSet, basename="audit-event")
router.register(r"projects/(?P<project>[a-z0-9-]+)/middleware", views.MiddlewareInstanceViewSet,
                basename="middleware-instance")

urlpatterns = [
    path("hooks/ci/<slug:project>/", views.CiHookView.as_view(), name="ci-hook"),
    *router.urls,
]
