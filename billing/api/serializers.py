import re
from datetime import date

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from deployments.api.serializers import ModelCleanSerializer
from deployments.models import Cluster, Environment, Project
from paas_site.api import SlugRelatedField

from ..models import Budget, BudgetAlert, PriceBook

_MONTH = re.compile(r"(\d{4})-(\d{2})")
# Periods end a day or a month after their last day, in the site's time zone: keep that inside datetime's range.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)


def validate_in_period_range(value: date) -> None:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise serializers.ValidationError(f"must be between {FIRST_DAY} and {LAST_DAY}.")


class PriceBookSerializer(ModelCleanSerializer):
    environment = SlugRelatedField(
        slug_field="name", queryset=Environment.objects.all(), required=False, allow_null=True
    )
    cluster = SlugRelatedField(slug_field="name", queryset=Cluster.objects.all(), required=False, allow_null=True)

    class Meta:
        model = PriceBook
        fields = [
            "id", "name", "environment", "cluster", "valid_from", "valid_until", "currency",
            "cpu_core_hour", "memory_gib_hour", "storage_gib_hour", "ingress_hour", "created_at", "updated_at",
        ]


class BudgetAlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = BudgetAlert
        fields = ["threshold", "spent", "budget_amount", "currency", "created_at", "notified_at"]


@extend_schema_field({"type": "string", "pattern": r"^\d{4}-\d{2}$", "example": "2026-03"})
class MonthField(serializers.Field):
    """``YYYY-MM`` in and out; a first-of-month date inside."""

    default_error_messages = {"invalid": "must be a month as YYYY-MM, e.g. 2026-03."}

    def to_internal_value(self, data) -> date:
        match = _MONTH.fullmatch(str(data))
        if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
            self.fail("invalid")
        month = date(int(match[1]), int(match[2]), 1)
        validate_in_period_range(month)
        return month

    def to_representation(self, value: date) -> str:
        return value.strftime("%Y-%m")


class BudgetSerializer(ModelCleanSerializer):
    project = SlugRelatedField(slug_field="slug", queryset=Project.objects.all())
    month = MonthField()
    alerts = BudgetAlertSerializer(many=True, read_only=True)

    class Meta:
        model = Budget
        fields = ["id", "project", "month", "amount", "currency", "alerts", "created_at", "updated_at"]


class MonthlyReportQuery(serializers.Serializer):
    month = MonthField()


class RangeReportQuery(serializers.Serializer):
    start = serializers.DateField(validators=[validate_in_period_range])
    end = serializers.DateField(validators=[validate_in_period_range])

    def validate(self, attrs):
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": "must not be before start."})
        return attrs
