import django_filters

from paas_site.api import IdFilter

from ..models import Record, Zone


class ZoneFilter(django_filters.FilterSet):
    class Meta:
        model = Zone
        fields = ["name", "provider"]


class RecordFilter(django_filters.FilterSet):
    application = IdFilter(field_name="application_id")
    project = django_filters.CharFilter(field_name="application__project__slug")
    environment = django_filters.CharFilter(field_name="environment__name")
    zone = django_filters.CharFilter(field_name="zone__name")

    class Meta:
        model = Record
        fields = ["application", "project", "environment", "zone", "name", "type", "status"]
