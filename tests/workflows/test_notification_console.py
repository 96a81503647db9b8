"""The console's notification pages: my notifications and preferences (everyone), a project's channels and
deliveries (maintainers only); writes go through the same services as the API (audited)."""
import pytest

from tests.deployments.factories import MembershipFactory, UserFactory
from workflows.models import AuditEvent, Notification, NotificationChannel, NotificationDelivery, NotificationProfile

pytestmark = pytest.mark.django_db
ROBOT = "https://qyapi.weixin.example/cgi-bin/webhook/send?key=wecom-key-77aa"


def test_a_maintainer_adds_switches_off_and_deletes_a_channel(client, project, maintainer):
    client.force_login(maintainer)

    added = client.post("/projects/shop/notifications/", {"name": "ops", "kind": "wecom", "url": ROBOT,
                                                           "events": ["failed", "rolled_back"]})
    page = client.get("/projects/shop/notifications/").content.decode()
    channel = NotificationChannel.objects.get()
    client.post(f"/projects/shop/notifications/{channel.id}/toggle/")
    channel.refresh_from_db()
    assert channel.active is False
    client.post(f"/projects/shop/notifications/{channel.id}/delete/")

    assert added.status_code == 302
    assert "qyapi.weixin.example" in page and "wecom-key-77aa" not in page
    assert not NotificationChannel.objects.exists()
    assert AuditEvent.objects.filter(target_type="workflows.notificationchannel").count() == 3


def test_a_bad_channel_is_shown_next_to_its_field(client, project, maintainer, settings):
    settings.SLIPWAY_OUTBOUND_ALLOW = []
    client.force_login(maintainer)

    response = client.post("/projects/shop/notifications/", {"name": "ops", "kind": "slack",
                                                             "url": "http://10.0.0.8/hook", "secret": "x",
                                                             "events": ["failed"]})

    assert response.status_code == 400
    assert response.context["form"].errors.keys() >= {"url", "secret"}
    assert not NotificationChannel.objects.exists()


@pytest.mark.parametrize("role", ["developer", "approver"])
def test_only_maintainers_reach_the_project_page(client, project, role):
    client.force_login(MembershipFactory(project=project, role=role, user=UserFactory()).user)

    assert client.get("/projects/shop/notifications/").status_code == 403
    assert client.get("/projects/nope/notifications/").status_code == 404


def test_everyone_chooses_their_media_and_sees_their_notifications(client, project, developer):
    notification = Notification.objects.create(event="failed", project=project, message={
        "subject": "Failed: release #9", "lines": ["build failed"], "links": [{"label": "Open", "url": "http://x/9"}]})
    NotificationDelivery.objects.create(notification=notification, recipient=developer, medium="console",
                                        target="dev", status="delivered")
    client.force_login(developer)

    saved = client.post("/notifications/preferences/", {"event_0": ["email"], "event_2": ["console", "chat"],
                                                         "slack_id": "U42"})
    inbox = client.get("/notifications/").content.decode()

    assert saved.status_code == 302
    profile = NotificationProfile.objects.get(user=developer)
    assert profile.preferences["awaiting_approval"] == ["email"] and profile.preferences["failed"] == ["chat", "console"]
    assert profile.preferences["succeeded"] == [] and profile.slack_id == "U42"
    assert "Failed: release #9" in inbox and "build failed" in inbox
