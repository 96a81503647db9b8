"""Inputs and outputs of the operations on running applications (scale, pods, logs)."""
from rest_framework import serializers

from paas_site.api import SlugRelatedField

from ..models import Environment


class EnvironmentChoice(SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(slug_field="name", queryset=Environment.objects.select_related("cluster"), **kwargs)


class ScaleInput(serializers.Serializer):
    environment = EnvironmentChoice()
    replicas = serializers.IntegerField(min_value=0, max_value=100)


class ScaleOutput(serializers.Serializer):
    environment = serializers.CharField()
    replicas = serializers.IntegerField()
    previous_replicas = serializers.IntegerField()


class EnvironmentInput(serializers.Serializer):
    environment = EnvironmentChoice()


class LogsQuery(EnvironmentInput):
    tail = serializers.IntegerField(min_value=1, max_value=5000, default=200)


class PodSerializer(serializers.Serializer):
    name = serializers.CharField()
    phase = serializers.CharField()
    ready = serializers.BooleanField()
    restarts = serializers.IntegerField()
    image = serializers.CharField()
    started_at = serializers.CharField(allow_null=True)
    reason = serializers.CharField()


class LogsOutput(serializers.Serializer):
    pod = serializers.CharField()
    lines = serializers.ListField(child=serializers.CharField())
