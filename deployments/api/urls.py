from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("projects", views.ProjectViewSet, basename="project")
router.register("memberships", views.ProjectMembershipViewSet, basename="membership")
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("environments", views.EnvironmentViewSet, basename="environment")
router.register("base-images", views.BaseImageViewSet, basename="base-image")
router.register("applications", views.ApplicationViewSet, basename="application")
router.register("middleware/templates", views.MiddlewareTemplateViewSet, basename="middleware-template")
router.register("packages", views.PackageViewSet, basename="package")

urlpatterns = router.urls
