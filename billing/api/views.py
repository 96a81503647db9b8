import io

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, viewsets
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from paas_site.spreadsheet import csv_write

from .. import selectors, services
from ..reports import report_as_dict, report_csv_rows
from . import serializers
from .permissions import FinanceWritesMembersRead


class PriceBookViewSet(viewsets.ModelViewSet):
    """Prices per environment or cluster; every signed-in user reads, finance and platform admins write."""

    serializer_class = serializers.PriceBookSerializer
    permission_classes = [FinanceWritesMembersRead]
    filterset_fields = ["currency"]
    search_fields = ["name"]
    ordering_fields = ["valid_from", "name"]

    def get_queryset(self):
        return selectors.price_book_list(user=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.price_book_create(actor=self.request.user, data=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.price_book_update(
            actor=self.request.user, price_book_id=serializer.instance.id, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.price_book_delete(actor=self.request.user, price_book_id=instance.id)


class BudgetViewSet(viewsets.ModelViewSet):
    """Monthly budgets: members read their project's, finance and platform admins read all and write."""

    serializer_class = serializers.BudgetSerializer
    permission_classes = [FinanceWritesMembersRead]
    filterset_fields = ["project__slug", "month", "currency"]
    ordering_fields = ["month"]

    def get_queryset(self):
        return selectors.budget_list(user=self.request.user).prefetch_related("alerts")

    def perform_create(self, serializer):
        serializer.instance = services.budget_create(actor=self.request.user, data=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.budget_update(
            actor=self.request.user, budget_id=serializer.instance.id, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.budget_delete(actor=self.request.user, budget_id=instance.id)


class CSVRenderer(BaseRenderer):
    """Renders a list of rows (the first one the header) as CSV."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        buffer = io.StringIO()
        csv_write(buffer, data)
        return buffer.getvalue().encode(self.charset)


class ReportView(APIView):
    """Errors are JSON even when CSV was asked for."""

    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer]

    def _query(self, serializer_class) -> dict:
        query = serializer_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data

    def _respond(self, report, filename: str) -> Response:
        if self.request.accepted_renderer.format == "csv":
            return Response(
                report_csv_rows(report), headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'}
            )
        return Response(report_as_dict(report))

    def finalize_response(self, request, response, *args, **kwargs):
        if response.exception and getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


FORMAT = OpenApiParameter("format", str, enum=["json", "csv"], description="csv: a spreadsheet, one row per application")


class MonthlyReportView(ReportView):
    @extend_schema(
        parameters=[serializers.MonthlyReportQuery, FORMAT],
        responses={200: OpenApiResponse(description="Costs per project, environment and application")},
    )
    def get(self, request):
        """Costs of one month for every project you may see; projects without usage at zero."""
        month = self._query(serializers.MonthlyReportQuery)["month"]
        report = selectors.monthly_report(user=request.user, month=month)
        return self._respond(report, f"slipway-costs-{month:%Y-%m}")


class RangeReportView(ReportView):
    @extend_schema(
        parameters=[serializers.RangeReportQuery, FORMAT],
        responses={200: OpenApiResponse(description="Costs per project, environment and application")},
    )
    def get(self, request):
        """Costs from start to end (both included) for every project you may see."""
        query = self._query(serializers.RangeReportQuery)
        report = selectors.cost_report(user=request.user, start=query["start"], end=query["end"])
        return self._respond(report, f"slipway-costs-{query['start']}-{query['end']}")
