"""Who configures notifications: a project's maintainers its chat channels, every user their own preferences.

Channel URLs and signing secrets are credentials: encrypted at rest (``EncryptedTextField``), accepted
here but never returned (answers say "set"), and the audit trail records only a keyed marker of them.
"""
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from deployments import changes
from deployments.models import Project
from deployments.permissions import Action, project_require
from paas_site.actors import Actor, actor_user
from paas_site.errors import NotAllowed, invalid_fields

from .. import audit
from ..choices import Medium, NotificationEvent
from ..models import NotificationChannel, NotificationProfile

CHANNEL_FIELDS = {"name", "kind", "url", "secret", "events", "active"}
PROFILE_IDS = ("slack_id", "dingtalk_id", "wecom_id", "feishu_id")


@transaction.atomic
def notification_channel_create(*, actor: Actor, project: Project, data: dict[str, Any]) -> NotificationChannel:
    project_require(actor, Action.MANAGE_WEBHOOKS, project)
    channel = NotificationChannel(project=project, **_channel_fields(data))
    _save(channel)
    audit.object_created(actor=actor, obj=channel)
    return channel


@transaction.atomic
def notification_channel_update(*, actor: Actor, channel_id: int, data: dict[str, Any]) -> NotificationChannel:
    """Change what is given; a URL or secret left out stays as it was ("" clears the secret)."""
    channel = NotificationChannel.objects.select_for_update().select_related("project").get(id=channel_id)
    project_require(actor, Action.MANAGE_WEBHOOKS, channel.project)
    before = audit.snapshot(channel)
    for name, value in _channel_fields(data).items():
        setattr(channel, name, value)
    _save(channel)
    audit.object_changed(actor=actor, obj=channel, before=before)
    return channel


@transaction.atomic
def notification_channel_delete(*, actor: Actor, channel_id: int) -> None:
    """Delete the channel; its past deliveries stay (without it) for the record."""
    channel = NotificationChannel.objects.select_for_update().select_related("project").get(id=channel_id)
    project_require(actor, Action.MANAGE_WEBHOOKS, channel.project)
    changes.deletion_record(actor=actor, obj=channel)
    channel.delete()


@transaction.atomic
def notification_profile_update(*, actor: Actor, preferences: dict[str, list[str]] | None = None,
                                **chat_ids: str) -> NotificationProfile:
    """Set the actor's own preferences (the events given; others keep theirs) and chat ids (those given)."""
    user = actor_user(actor)
    if user is None:
        raise NotAllowed("Only a user has notification preferences.")
    unknown = set(chat_ids) - set(PROFILE_IDS)
    if unknown:
        raise TypeError(f"not chat ids: {sorted(unknown)}")
    profile, created = NotificationProfile.objects.select_for_update().get_or_create(user=user)
    before = audit.snapshot(profile)
    if preferences:
        problems = {f"preferences.{event}": ["is not an event kind."] for event in preferences
                    if event not in NotificationEvent.values}
        problems |= {f"preferences.{event}": [f"{medium!r} is not one of {', '.join(Medium.values)}."]
                     for event, media in preferences.items() for medium in media if medium not in Medium.values}
        if problems:
            raise invalid_fields(problems)
        profile.preferences = {**profile.preferences, **{event: sorted(set(media)) for event, media in
                                                         preferences.items()}}
    for name, value in chat_ids.items():
        setattr(profile, name, value.strip())
    _clean(profile)
    profile.save()
    if created:
        audit.object_created(actor=actor, obj=profile)
    else:
        audit.object_changed(actor=actor, obj=profile, before=before)
    return profile


def _channel_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields = {name: value for name, value in data.items() if name in CHANNEL_FIELDS}
    if fields.get("url") is None:
        fields.pop("url", None)
    if fields.get("secret") is None:
        fields.pop("secret", None)
    return fields


def _clean(obj: NotificationChannel | NotificationProfile, **options: Any) -> None:
    """The model's rules, as a 400 naming each field."""
    try:
        obj.full_clean(**options)
    except ValidationError as exc:
        raise invalid_fields(exc.message_dict) from None


def _save(channel: NotificationChannel) -> None:
    _clean(channel, exclude=["project"])
    try:
        with transaction.atomic():
            channel.save()
    except IntegrityError:
        raise invalid_fields({"name": [f"{channel.project.slug} already has a channel named {channel.name!r}."]}) \
            from None
