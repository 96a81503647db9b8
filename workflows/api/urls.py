from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("applications", views.ApplicationOperationsViewSet, basename="application-operations")

urlpatterns = router.urls
