from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("zones", views.ZoneViewSet, basename="dns-zone")
router.register("records", views.RecordViewSet, basename="dns-record")

urlpatterns = router.urls
