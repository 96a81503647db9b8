from django.urls import path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("price-books", views.PriceBookViewSet, basename="price-book")
router.register("budgets", views.BudgetViewSet, basename="budget")

urlpatterns = [
    path("reports/monthly/", views.MonthlyReportView.as_view(), name="billing-report-monthly"),
    path("reports/range/", views.RangeReportView.as_view(), name="billing-report-range"),
    *router.urls,
]
