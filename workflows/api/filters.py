import django_filters

from deployments.models import Project
from paas_site.api import IdFilter, IsoDateTimeFilter

from ..choices import AuditAction, ReleaseState
from ..models import AuditEvent, Release


class ReleaseFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="application__project__slug")
    application = IdFilter(field_name="application_id")
    environment = django_filters.CharFilter(field_name="environment__name")
    # a release has one state: no join, so no DISTINCT (over every column, config included) is needed
    state = django_filters.MultipleChoiceFilter(choices=ReleaseState.choices, distinct=False)

    class Meta:
        model = Release
        fields = ["project", "application", "environment", "state"]


class AuditEventFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(method="filter_project")
    release = IdFilter(field_name="release_id")
    actor = django_filters.CharFilter()
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    since = IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["project", "release", "actor", "action", "since", "until"]

    def filter_project(self, queryset, name, value):
        return queryset.filter(project_id__in=Project.objects.filter(slug=value).values("id"))
