"""Notifications in the API: a project's chat channels and deliveries (maintainers), my preferences and my
console notifications (every user). URLs and secrets are write-only: answers say whether they are set."""
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from deployments.permissions import Action, project_require
from deployments.selectors import project_list

from ..choices import ChannelKind, Medium, NotificationEvent
from ..models import DeliveryAttempt, NotificationChannel, NotificationDelivery
from ..services import notification_settings
from ..services.notifications import preferences_of


def _set(value: str) -> str:
    return "set" if value else "not set"


class NotificationChannelSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    url = serializers.URLField(write_only=True, max_length=2000,
                               help_text="The robot's webhook URL; write-only (it holds the robot's token or key).")
    secret = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500,
                                   help_text="DingTalk / Feishu signing secret; write-only; \"\" clears it.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=NotificationEvent.choices), max_length=20)
    url_host = serializers.CharField(read_only=True)
    url_set = serializers.SerializerMethodField()
    secret_set = serializers.SerializerMethodField()

    class Meta:
        model = NotificationChannel
        fields = ["id", "name", "kind", "url", "url_host", "url_set", "secret", "secret_set", "events", "active",
                  "created_at"]
        read_only_fields = ["created_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance is not None:  # a change keeps the URL unless a new one is given
            self.fields["url"].required = False

    def get_url_set(self, channel) -> str:
        return _set(channel.url)

    def get_secret_set(self, channel) -> str:
        return _set(channel.secret)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "outcome", "error", "started_at", "finished_at"]


class NotificationDeliverySerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="notification.event", read_only=True)
    subject = serializers.SerializerMethodField()
    release = serializers.IntegerField(source="notification.release_id", read_only=True, allow_null=True)
    recipient = serializers.SlugRelatedField(slug_field="username", read_only=True)
    channel = serializers.SlugRelatedField(slug_field="name", read_only=True)
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = NotificationDelivery
        fields = ["id", "event", "subject", "release", "medium", "recipient", "channel", "target", "mentions",
                  "status", "attempts", "last_error", "created_at", "delivered_at", "attempt_log"]

    def get_subject(self, delivery) -> str:
        return delivery.notification.message.get("subject", "")


class MyNotificationSerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="notification.event", read_only=True)
    message = serializers.JSONField(source="notification.message", read_only=True)

    class Meta:
        model = NotificationDelivery
        fields = ["id", "event", "message", "created_at"]


class _ProjectScoped:
    def project(self):
        """The project of the URL: 404 if the user may not see it, 403 if they may not manage its channels."""
        project = get_object_or_404(project_list(user=self.request.user), slug=self.kwargs["project"])
        project_require(self.request.user, Action.MANAGE_WEBHOOKS, project)
        return project


class NotificationChannelViewSet(_ProjectScoped, viewsets.ModelViewSet):
    """A project's chat robots (maintainers): Slack-compatible, DingTalk, WeCom, Feishu/Lark."""

    serializer_class = NotificationChannelSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no project
            return NotificationChannel.objects.none()
        return NotificationChannel.objects.filter(project=self.project()).select_related("project").order_by("name")

    def perform_create(self, serializer):
        serializer.instance = notification_settings.notification_channel_create(
            actor=self.request.user, project=self.project(), data=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = notification_settings.notification_channel_update(
            actor=self.request.user, channel_id=serializer.instance.id, data=serializer.validated_data)

    def perform_destroy(self, instance):
        notification_settings.notification_channel_delete(actor=self.request.user, channel_id=instance.id)


class NotificationDeliveryViewSet(_ProjectScoped, viewsets.ReadOnlyModelViewSet):
    """Every delivery of the project's notifications with each attempt (maintainers)."""

    serializer_class = NotificationDeliverySerializer
    filterset_fields = ["status"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return NotificationDelivery.objects.none()
        return (NotificationDelivery.objects.filter(notification__project=self.project())
                .select_related("notification", "recipient", "channel").prefetch_related("attempt_log")
                .order_by("-id"))


class MyNotificationViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """My console notifications, newest first."""

    serializer_class = MyNotificationSerializer

    def get_queryset(self):
        return (NotificationDelivery.objects.filter(recipient_id=self.request.user.id, medium=Medium.CONSOLE)
                .select_related("notification").order_by("-id"))


class PreferencesSerializer(serializers.Serializer):
    preferences = serializers.DictField(
        child=serializers.ListField(child=serializers.ChoiceField(choices=Medium.choices), max_length=3),
        required=False, help_text=f"{{event: [media]}} for the events to change; events: "
                                  f"{', '.join(NotificationEvent.values)}.")
    slack_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    dingtalk_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    wecom_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    feishu_id = serializers.CharField(max_length=64, required=False, allow_blank=True)

    def validate_preferences(self, value):
        unknown = sorted(set(value) - set(NotificationEvent.values))
        if unknown:
            raise serializers.ValidationError(f"not event kinds: {', '.join(unknown)}; "
                                              f"use {', '.join(NotificationEvent.values)}.")
        return value


class PreferencesOutput(PreferencesSerializer):
    defaults = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class NotificationPreferencesView(APIView):
    """My notification preferences: per event kind, the media that reach me; my chat ids for mentions."""

    @extend_schema(responses=PreferencesOutput)
    def get(self, request):
        return Response(preferences_of(request.user))

    @extend_schema(request=PreferencesSerializer, responses=PreferencesOutput)
    def put(self, request):
        """Change what is sent: the events given (others keep theirs), the chat ids given."""
        data = PreferencesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        notification_settings.notification_profile_update(actor=request.user, **data.validated_data)
        return Response(preferences_of(request.user), status=status.HTTP_200_OK)
