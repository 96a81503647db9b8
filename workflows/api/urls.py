from django.urls import path
from rest_framework.routers import SimpleRouter

from . import notifications, views

router = SimpleRouter()
router.register("applications", views.ApplicationOperationsViewSet, basename="application-operations")
router.register("releases", views.ReleaseViewSet, basename="release")
router.register("audit", views.AuditEventViewSet, basename="audit-event")
router.register(r"projects/(?P<project>[a-z0-9-]+)/middleware", views.MiddlewareInstanceViewSet,
                basename="middleware-instance")
router.register(r"projects/(?P<project>[a-z0-9-]+)/ci-tokens", views.CiTokenViewSet, basename="ci-token")
router.register(r"projects/(?P<project>[a-z0-9-]+)/notification-channels", notifications.NotificationChannelViewSet,
                basename="notification-channel")
router.register(r"projects/(?P<project>[a-z0-9-]+)/notification-deliveries",
                notifications.NotificationDeliveryViewSet, basename="notification-delivery")
router.register("notifications/mine", notifications.MyNotificationViewSet, basename="my-notification")

urlpatterns = [
    path("hooks/ci/<slug:project>/", views.CiHookView.as_view(), name="ci-hook"),
    path("notifications/preferences/", notifications.NotificationPreferencesView.as_view(),
         name="notification-preferences"),
    *router.urls,
]
