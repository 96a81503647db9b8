"""Configuring notifications through the API: channels (maintainers; URLs and secrets write-only, never in an
answer, the audit trail or a log), deliveries with their attempts (maintainers), preferences (everyone)."""
import logging

import pytest

from tests.deployments.factories import MembershipFactory, UserFactory
from workflows.models import AuditEvent, DeliveryAttempt, Notification, NotificationChannel, NotificationDelivery

pytestmark = pytest.mark.django_db
URL = "/api/v1/projects/shop/notification-channels/"
ROBOT = "https://oapi.dingtalk.example/robot/send?access_token=tok-1a2b3c4d"
SECRET = "SEC-very-secret-9f8e"


def create(client, **fields):
    return client.post(URL, {"name": "ops", "kind": "dingtalk", "url": ROBOT, "secret": SECRET,
                             "events": ["awaiting_approval", "failed"], **fields}, format="json")


def test_a_maintainer_adds_a_channel_whose_url_and_secret_never_come_back(api, maintainer, caplog):
    caplog.set_level(logging.DEBUG)
    client = api.as_user(maintainer)

    created = create(client)
    listed = client.get(URL)
    changed = client.patch(f"{URL}{created.json()['id']}/", {"events": ["failed"]}, format="json")

    assert created.status_code == 201, created.content
    assert created.json() | {"id": 0, "created_at": ""} == {
        "id": 0, "name": "ops", "kind": "dingtalk", "url_host": "oapi.dingtalk.example", "url_set": "set",
        "secret_set": "set", "events": ["awaiting_approval", "failed"], "active": True, "created_at": ""}
    assert changed.status_code == 200 and changed.json()["events"] == ["failed"]
    channel = NotificationChannel.objects.get()
    assert channel.url == ROBOT and channel.secret == SECRET  # kept by a change that did not send them
    events = list(AuditEvent.objects.filter(target_type="workflows.notificationchannel"))
    assert [event.action for event in events] == ["object.created", "object.changed"]
    for text in [created.content.decode(), listed.content.decode(), changed.content.decode(), caplog.text,
                 *(str(event.after) + str(event.before) for event in events)]:
        assert "tok-1a2b3c4d" not in text and SECRET not in text


def test_a_change_may_replace_or_clear_the_secret(api, maintainer):
    client = api.as_user(maintainer)
    channel_id = create(client).json()["id"]

    cleared = client.patch(f"{URL}{channel_id}/", {"secret": ""}, format="json")

    assert cleared.json()["secret_set"] == "not set" and NotificationChannel.objects.get().secret == ""


@pytest.mark.parametrize("fields,field", [
    ({"kind": "telegram"}, "kind"),
    ({"url": "not a url"}, "url"),
    ({"url": "ftp://robots.example/x"}, "url"),
    ({"url": "http://169.254.169.254/latest/meta-data"}, "url"),
    ({"events": ["deployed"]}, "events"),
    ({"kind": "slack"}, "secret"),  # Slack and WeCom do not sign: a secret there is a mistake
    ({"name": ""}, "name"),
])
def test_bad_channels_are_a_400_naming_the_field(api, maintainer, settings, fields, field):
    settings.SLIPWAY_OUTBOUND_ALLOW = []

    response = create(api.as_user(maintainer), **fields)

    assert response.status_code == 400, response.content
    assert field in response.json()["extra"]["fields"], response.json()
    assert not NotificationChannel.objects.exists()


def test_a_second_channel_of_the_same_name_is_a_400(api, maintainer):
    create(api.as_user(maintainer))

    response = create(api.as_user(maintainer))

    assert response.status_code == 400 and "name" in response.json()["extra"]["fields"]


@pytest.mark.parametrize("role", ["developer", "approver"])
def test_only_maintainers_manage_channels_and_see_deliveries(api, project, role):
    member = MembershipFactory(project=project, role=role, user=UserFactory()).user
    client = api.as_user(member)

    assert create(client).status_code == 403
    assert client.get(URL).status_code == 403
    assert client.get("/api/v1/projects/shop/notification-deliveries/").status_code == 403
    assert api.as_user(UserFactory()).get(URL).status_code == 404  # not even visible to outsiders


def test_maintainers_see_each_delivery_attempt(api, project, maintainer):
    notification = Notification.objects.create(event="failed", project=project, message={"subject": "Failed: x"})
    delivery = NotificationDelivery.objects.create(notification=notification, medium="slack", target="channel ops",
                                                   status="failed", attempts=1, last_error="Slack answered HTTP 404")
    DeliveryAttempt.objects.create(delivery=delivery, number=1, outcome="failed", error="Slack answered HTTP 404",
                                   started_at=notification.created_at, finished_at=notification.created_at)

    body = api.as_user(maintainer).get("/api/v1/projects/shop/notification-deliveries/?status=failed").json()

    [row] = body["results"]
    assert row["subject"] == "Failed: x" and row["status"] == "failed"
    assert [(a["number"], a["outcome"], a["error"]) for a in row["attempt_log"]] == [
        (1, "failed", "Slack answered HTTP 404")]


def test_everyone_sets_their_own_preferences(api, developer):
    client = api.as_user(developer)

    before = client.get("/api/v1/notifications/preferences/").json()
    put = client.put("/api/v1/notifications/preferences/", {
        "preferences": {"succeeded": ["email", "console"]}, "feishu_id": "ou_123"}, format="json")

    assert before["preferences"]["awaiting_approval"] == ["email", "chat", "console"]
    assert put.status_code == 200, put.content
    assert put.json()["preferences"]["succeeded"] == ["console", "email"]
    assert put.json()["preferences"]["failed"] == before["preferences"]["failed"]  # untouched: the default
    assert put.json()["feishu_id"] == "ou_123"
    assert AuditEvent.objects.filter(target_type="workflows.notificationprofile", actor="user:dev").exists()


@pytest.mark.parametrize("body,field", [
    ({"preferences": {"deployed": ["email"]}}, "preferences"),
    ({"preferences": {"failed": ["pager"]}}, "preferences"),
    ({"preferences": {"failed": "email"}}, "preferences"),
    ({"slack_id": "U" * 65}, "slack_id"),
    ({"slack_id": "U1> <!channel> <https://evil.example|Approve here"}, "slack_id"),
    ({"feishu_id": 'ou_1"></at><at user_id="all'}, "feishu_id"),
])
def test_bad_preferences_are_a_400_naming_the_field(api, developer, body, field):
    response = api.as_user(developer).put("/api/v1/notifications/preferences/", body, format="json")

    assert response.status_code == 400 and field in response.json()["extra"]["fields"], response.content
    assert not AuditEvent.objects.filter(target_type="workflows.notificationprofile").exists()


def test_my_notifications_are_mine_only(api, project, developer, maintainer):
    notification = Notification.objects.create(event="failed", project=project, message={"subject": "Failed: y"})
    NotificationDelivery.objects.create(notification=notification, recipient=developer, medium="console",
                                        target="dev", status="delivered")

    mine = api.as_user(developer).get("/api/v1/notifications/mine/").json()["results"]
    theirs = api.as_user(maintainer).get("/api/v1/notifications/mine/").json()["results"]

    assert [row["message"]["subject"] for row in mine] == ["Failed: y"] and theirs == []
