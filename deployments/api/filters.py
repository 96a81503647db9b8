import django_filters

from ..models import Application, Environment, ProjectMembership


class ApplicationFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")
    base_image = django_filters.CharFilter(field_name="base_image__name")

    class Meta:
        model = Application
        fields = ["project", "name", "base_image", "exposed"]


class EnvironmentFilter(django_filters.FilterSet):
    cluster = django_filters.CharFilter(field_name="cluster__name")

    class Meta:
        model = Environment
        fields = ["cluster", "name"]


class ProjectMembershipFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")
    user = django_filters.CharFilter(field_name="user__username")

    class Meta:
        model = ProjectMembership
        fields = ["project", "user", "role"]
