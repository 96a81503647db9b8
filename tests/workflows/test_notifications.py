"""Notifications against real receivers: an SMTP server on loopback and chat robots that verify each vendor's
format and signature; the real Celery worker for the asynchronous path."""
import json
import logging
import socket

import pytest
from django.db import transaction

from paas_site.errors import PermanentError, TransientError
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, MembershipFactory, UserFactory
from tests.workflows.factories import file_release, wait_final
from tests.workflows.notify_fixtures import html_of, text_of, wait_for
from workflows import chat, services
from workflows.choices import AttemptOutcome, DeliveryStatus
from workflows.models import Notification, NotificationChannel, NotificationDelivery, NotificationProfile
from workflows.services import notifications

MESSAGE = chat.ChatMessage(subject="Approval needed: release #1", lines=["Filed by dev."],
                           links=[("Open the release", "http://testserver/releases/1/")], mentions=["u-1"])


@pytest.fixture
def prod(project):
    return EnvironmentFactory(name="prod", required_approvals=2)


@pytest.fixture
def team(project, developer, maintainer):
    """Who is who in ``shop``: two approvers, a maintainer, a developer; an approver elsewhere; a former one."""
    approvers = [MembershipFactory(project=project, role="approver", user=UserFactory(username=name)).user
                 for name in ("alice", "bob")]
    elsewhere = MembershipFactory(role="approver", user=UserFactory(username="eve")).user
    former = MembershipFactory(project=project, role="approver", user=UserFactory(username="gone")).user
    former.is_active = False
    former.save()
    return {"approvers": approvers, "maintainer": maintainer, "developer": developer, "elsewhere": elsewhere}


def deliver_now(notification: Notification) -> list[str]:
    """Fan out and send in this process, as the worker would; the statuses of the sent deliveries."""
    return [notifications.notification_deliver(delivery_id=delivery_id)
            for delivery_id in notifications.notification_fanout(notification_id=notification.id)]


def filed(developer, project, environment, capture):
    application = (project.applications.filter(name="web").first()
                   or ApplicationFactory(project=project, name="web", image="registry.example.com/shop/web"))
    with capture(execute=False):
        release = file_release(actor=developer, application=application, environment=environment)
    return release, Notification.objects.get(release=release, event="awaiting_approval")


# -- chat formats, each verified by the vendor's recipe ------------------------------------
@pytest.mark.parametrize("kind,secret", [("slack", ""), ("dingtalk", "SEC-ding-secret"), ("dingtalk", ""),
                                         ("wecom", ""), ("feishu", "feishu-secret"), ("feishu", "")])
def test_each_chat_format_is_accepted_by_a_robot_checking_the_vendor_recipe(chat_robot, kind, secret):
    robot = chat_robot(kind, secret)

    chat.chat_send(kind, robot.webhook_url, secret, MESSAGE)

    assert robot.refused == [] and len(robot.accepted) == 1
    body = json.dumps(robot.accepted[0], ensure_ascii=False)
    assert "Approval needed: release #1" in body and "http://testserver/releases/1/" in body and "u-1" in body


@pytest.mark.parametrize("kind", ["dingtalk", "feishu"])
def test_a_wrong_signing_secret_is_refused_by_the_robot_and_not_retried(chat_robot, kind):
    robot = chat_robot(kind, "the-right-secret")

    with pytest.raises(PermanentError, match="refused the message: code") as caught:
        chat.chat_send(kind, robot.webhook_url, "a-wrong-secret", MESSAGE)

    assert robot.refused == ["sign mismatch"] and robot.accepted == []
    assert "secret" not in caught.value.message and "robot-" not in caught.value.message  # nor the URL's token


def test_a_robot_url_on_loopback_is_refused_before_a_connection(settings, chat_robot):
    robot = chat_robot("wecom")
    settings.SLIPWAY_OUTBOUND_ALLOW = []

    with pytest.raises(PermanentError, match="refused by the outbound policy") as caught:
        chat.chat_send("wecom", robot.webhook_url, "", MESSAGE)

    assert robot.connections == 0 and "robot-key" not in caught.value.message


# -- who is told ---------------------------------------------------------------------------
def test_awaiting_approval_goes_to_exactly_those_who_may_decide(project, prod, team, smtp_server,
                                                                django_capture_on_commit_callbacks):
    release, notification = filed(team["developer"], project, prod, django_capture_on_commit_callbacks)
    services.approval_grant(release_id=release.id, actor=team["approvers"][1])  # bob decided: 1 of 2

    statuses = deliver_now(notification)

    told = {message["X-RcptTo"] for message in smtp_server.messages}
    assert told == {"alice@example.com", "lead@example.com"}  # not dev (filed it), bob (decided), eve, gone
    assert statuses == ["delivered", "delivered"]
    message = next(m for m in smtp_server.messages if m["X-RcptTo"] == "alice@example.com")
    assert message["Subject"].strip() == f"Approval needed: release #{release.id}: shop/web 1.0 → prod"
    for body in (text_of(message), html_of(message)):
        assert f"http://testserver/releases/{release.id}/" in body and "http://testserver/approvals/" in body


def test_whoever_changed_the_release_is_not_asked_to_approve_it(project, prod, team, smtp_server,
                                                                django_capture_on_commit_callbacks):
    release, _ = filed(team["developer"], project, prod, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        services.release_change(release_id=release.id, actor=team["maintainer"], description="edited")
    # no approval was voided, so the change asks nobody again; the filing's notification now skips the editor
    notification = Notification.objects.get(release=release)

    deliver_now(notification)

    assert {message["X-RcptTo"] for message in smtp_server.messages} == {"alice@example.com", "bob@example.com"}


def test_a_change_that_voids_approvals_asks_the_deciders_again(project, prod, team, smtp_server,
                                                                django_capture_on_commit_callbacks):
    release, first = filed(team["developer"], project, prod, django_capture_on_commit_callbacks)
    services.approval_grant(release_id=release.id, actor=team["approvers"][0])
    with django_capture_on_commit_callbacks(execute=False):
        services.release_change(release_id=release.id, actor=team["developer"], version="1.1")

    again = Notification.objects.filter(release=release, event="awaiting_approval").exclude(id=first.id).get()
    deliver_now(again)

    assert {message["X-RcptTo"] for message in smtp_server.messages} == {
        "alice@example.com", "bob@example.com", "lead@example.com"}


def test_a_rejection_tells_the_requester_and_the_project_channels(project, prod, team, smtp_server, chat_robot,
                                                                   django_capture_on_commit_callbacks):
    robot = chat_robot("wecom")
    NotificationChannel.objects.create(project=project, name="ops", kind="wecom", url=robot.webhook_url,
                                       events=["rejected"])
    NotificationProfile.objects.create(user=team["developer"], wecom_id="dev-wecom")
    release, _ = filed(team["developer"], project, prod, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        services.approval_reject(release_id=release.id, actor=team["approvers"][0], comment="not on a Friday")

    deliver_now(Notification.objects.get(release=release, event="rejected"))

    assert [message["X-RcptTo"] for message in smtp_server.messages] == ["dev@example.com"]
    assert "Rejected by alice: not on a Friday" in text_of(smtp_server.messages[0])
    assert len(robot.accepted) == 1 and "<@dev-wecom>" in robot.accepted[0]["markdown"]["content"]


def test_budget_alerts_reach_the_maintainers_and_finance(project, team, finance_user, smtp_server,
                                                         django_capture_on_commit_callbacks):
    from datetime import date
    from decimal import Decimal

    from billing.models import Budget, BudgetAlert

    budget = Budget.objects.create(project=project, month=date(2026, 11, 1), amount=Decimal("100"), currency="EUR")
    BudgetAlert.objects.create(budget=budget, threshold=80, spent=Decimal("81"), budget_amount=Decimal("100"),
                               currency="EUR")
    with django_capture_on_commit_callbacks(execute=False):
        assert notifications.budget_alerts_notify() == 1

    deliver_now(Notification.objects.get(event="budget.threshold_reached"))

    assert {message["X-RcptTo"] for message in smtp_server.messages} == {"lead@example.com", "money@example.com"}
    assert "/costs/?month=2026-11&project=shop" in text_of(smtp_server.messages[0])


def test_preferences_choose_the_media(project, prod, team, smtp_server, django_capture_on_commit_callbacks):
    NotificationProfile.objects.create(user=team["approvers"][0], preferences={"awaiting_approval": ["console"]})
    _, notification = filed(team["developer"], project, prod, django_capture_on_commit_callbacks)

    deliver_now(notification)

    assert "alice@example.com" not in {message["X-RcptTo"] for message in smtp_server.messages}
    alice = NotificationDelivery.objects.get(notification=notification, recipient=team["approvers"][0])
    assert alice.medium == "console" and alice.status == DeliveryStatus.DELIVERED


# -- once, and never in the way of the release ----------------------------------------------
def test_fanning_out_and_delivering_twice_sends_once(project, prod, team, smtp_server,
                                                     django_capture_on_commit_callbacks):
    _, notification = filed(team["developer"], project, prod, django_capture_on_commit_callbacks)
    deliver_now(notification)
    sent = len(smtp_server.messages)

    assert notifications.notification_fanout(notification_id=notification.id) == []
    for delivery in NotificationDelivery.objects.filter(notification=notification, medium="email"):
        assert notifications.notification_deliver(delivery_id=delivery.id) == "delivered"

    assert len(smtp_server.messages) == sent == 3


def test_a_rolled_back_transition_records_and_sends_nothing(project, prod, team, smtp_server):
    application = ApplicationFactory(project=project, name="web", image="registry.example.com/shop/web")

    with pytest.raises(RuntimeError), transaction.atomic():
        file_release(actor=team["developer"], application=application, environment=prod)
        raise RuntimeError("the caller's transaction fails after filing")

    assert not Notification.objects.exists()


def test_a_notification_that_cannot_be_recorded_does_not_stop_the_release(project, prod, team, monkeypatch, caplog):
    def broken(release, event):
        raise ValueError("a bug in the message")

    monkeypatch.setattr(notifications, "release_message", broken)
    application = ApplicationFactory(project=project, name="web", image="registry.example.com/shop/web")

    release = file_release(actor=team["developer"], application=application, environment=prod)

    assert release.state == "requested" and not Notification.objects.exists()
    assert "could not be recorded" in caplog.text


def test_the_mail_relay_must_pass_the_outbound_policy(settings, project, prod, team, smtp_server,
                                                      django_capture_on_commit_callbacks):
    settings.SLIPWAY_OUTBOUND_ALLOW = []
    _, notification = filed(team["developer"], project, prod, django_capture_on_commit_callbacks)

    assert set(deliver_now(notification)) == {"failed"}

    assert smtp_server.messages == []
    delivery = NotificationDelivery.objects.filter(notification=notification, medium="email").first()
    assert delivery.last_error == "mail relay 127.0.0.1: 127.0.0.1 is refused by the outbound policy"
    assert list(delivery.attempt_log.values_list("outcome", flat=True)) == [AttemptOutcome.FAILED]


# -- the real worker -----------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_release_filed_to_prod_mails_and_chats_exactly_its_deciders(worker, api, client, team, prod, project,
                                                                      smtp_server, chat_robot):
    # given: a signed DingTalk robot for the project, and chat ids for everyone
    robot = chat_robot("dingtalk", "SEC-prod-robot")
    NotificationChannel.objects.create(project=project, name="prod-approvals", kind="dingtalk", secret="SEC-prod-robot",
                                       url=robot.webhook_url, events=["awaiting_approval"])
    for user in [*team["approvers"], team["maintainer"], team["developer"], team["elsewhere"]]:
        NotificationProfile.objects.create(user=user, dingtalk_id=f"ding-{user.username}")
    application = ApplicationFactory(project=project, name="web", image="registry.example.com/shop/web")

    # when: the developer files a release to prod through the API
    response = api.as_user(team["developer"]).post("/api/v1/releases/", {
        "application": application.id, "environment": "prod", "version": "2.0",
        "image": "registry.example.com/shop/web:2.0@sha256:" + "a" * 64}, format="json")
    assert response.status_code == 201, response.content
    release_id = response.json()["id"]

    # then: each decider gets one email, the robot one signed message mentioning exactly them
    wait_for(lambda: len(smtp_server.messages) >= 3 and robot.accepted)
    wait_for(lambda: not NotificationDelivery.objects.filter(status="pending").exists())
    assert sorted(m["X-RcptTo"] for m in smtp_server.messages) == [
        "alice@example.com", "bob@example.com", "lead@example.com"]
    assert robot.refused == [] and len(robot.accepted) == 1
    assert sorted(robot.accepted[0]["at"]["atUserIds"]) == ["ding-alice", "ding-bob", "ding-lead"]
    # and the link opens the approval page for an approver
    text = text_of(smtp_server.messages[0])
    link = next(word for word in text.split() if word.startswith("http://testserver/approvals/"))
    client.force_login(team["approvers"][0])
    page = client.get(link.removeprefix("http://testserver"))
    assert page.status_code == 200 and f"/releases/{release_id}/" in page.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_robot_that_fails_then_recovers_gets_exactly_one_message(worker, settings, team, prod, project,
                                                                   chat_robot):
    settings.SLIPWAY_NOTIFY_RETRY_BASE_SECONDS = 0.1
    robot = chat_robot("feishu", "lark-secret", fail_first=2)
    NotificationChannel.objects.create(project=project, name="lark", kind="feishu", secret="lark-secret",
                                       url=robot.webhook_url, events=["awaiting_approval"])
    application = ApplicationFactory(project=project, name="web", image="registry.example.com/shop/web")

    file_release(actor=team["developer"], application=application, environment=prod)

    delivery = wait_for(lambda: NotificationDelivery.objects.filter(medium="feishu", status="delivered").first())
    assert len(robot.accepted) == 1 and robot.refused == [] and len(robot.requests) == 3
    assert list(delivery.attempt_log.values_list("outcome", flat=True)) == ["retrying", "retrying", "delivered"]
    assert delivery.attempt_log.first().error == "Feishu / Lark bot at 127.0.0.1 answered HTTP 503"


# -- attacks ---------------------------------------------------------------------------
HOSTILE = "<!channel> <@U0EVIL> <at user_id=\"all\"></at> [win](http://evil.example) <script>x</script>"


@pytest.mark.parametrize("kind", ["slack", "dingtalk", "wecom", "feishu"])
def test_what_users_write_cannot_mention_or_link_in_chat(chat_robot, kind):
    robot = chat_robot(kind)
    hostile = chat.ChatMessage(subject="Rejected: release #1", lines=[f"Rejected by mallory: {HOSTILE}"],
                               links=[("Open the release", "http://testserver/releases/1/")],
                               # chat ids stored before they were validated, written to mention everyone
                               mentions=["U1> <!channel> <https://evil.example|Approve here",
                                         'ou_1"></at><at user_id="all', "U0GOOD"])

    chat.chat_send(kind, robot.webhook_url, "", hostile)

    body = json.dumps(robot.accepted[0], ensure_ascii=False)
    active = ["<!channel>", "<@U0EVIL>", '<at user_id=\\"all\\">']
    active += [] if kind == "slack" else ["[win](http://evil.example)"]  # Slack links only as <url|text>
    for markup in active:
        assert markup not in body
    assert "mallory" in body and "http://testserver/releases/1/" in body and "U0GOOD" in body
    assert "evil.example|" not in body


def test_the_html_email_escapes_what_users_write(project, prod, team, smtp_server,
                                                 django_capture_on_commit_callbacks):
    release, _ = filed(team["developer"], project, prod, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        services.approval_reject(release_id=release.id, actor=team["approvers"][0], comment=HOSTILE)

    deliver_now(Notification.objects.get(release=release, event="rejected"))

    html = html_of(smtp_server.messages[0])
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_a_robot_redirect_is_not_followed(http_peer):
    elsewhere = http_peer(lambda request: (200, {}, b"ok"), host="127.0.0.2")
    robot = http_peer(lambda request: (302, {"Location": f"{elsewhere.url}/collect"}, b""))

    with pytest.raises(PermanentError, match=r"HTTP 302 \(a redirect, not followed\)"):
        chat.chat_send("slack", f"{robot.url}/services/T0/B0/secret-path", "", MESSAGE)

    assert elsewhere.connections == 0


def test_an_unreachable_robot_is_retried_and_its_token_is_not_logged(caplog):
    caplog.set_level(logging.DEBUG)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/cgi-bin/webhook/send?key=wecom-secret-key"

        with pytest.raises(TransientError) as caught:
            chat.chat_send("wecom", url, "", MESSAGE)

    assert caught.value.message == "WeCom (企业微信) group robot at 127.0.0.1 unreachable"
    assert "unreachable" in caplog.text and "wecom-secret-key" not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_the_pipeline_tells_the_requester_and_the_channel_of_success_and_of_a_rollback(
        worker, quick_pipeline, sandbox_cluster, project, developer, smtp_server, chat_robot):
    robot = chat_robot("slack")
    NotificationChannel.objects.create(project=project, name="releases", kind="slack", url=robot.webhook_url,
                                       events=["succeeded", "rolled_back"])
    NotificationProfile.objects.create(user=developer, slack_id="U0DEV")
    dev = EnvironmentFactory(name="dev", cluster=sandbox_cluster, required_approvals=0, rollout_deadline_seconds=3)
    application = ApplicationFactory(project=project, name="api", replicas=1)

    good = wait_final(file_release(actor=developer, application=application, environment=dev, version="1.0"))
    bad = wait_final(file_release(actor=developer, application=application, environment=dev, version="1.1",
                                  image="registry.example.com/shop/api:1.1-broken@sha256:" + "d" * 64))

    assert (good.state, bad.state) == ("succeeded", "rolled_back")
    wait_for(lambda: len(robot.accepted) == 2 and smtp_server.messages)
    texts = [body["blocks"][0]["text"]["text"] for body in robot.accepted]
    assert sorted(text.split(":")[0] for text in texts) == ["*Rolled back", "*Succeeded"]
    assert all("<@U0DEV>" in text for text in texts)
    # succeeded reaches the requester in the console only (the default); the rollback by email too
    [mail] = smtp_server.messages
    assert mail["X-RcptTo"] == "dev@example.com" and mail["Subject"].strip().startswith("Rolled back: release #")
    assert "progress deadline" in text_of(mail)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # loopback, in a test
def test_smtp_credentials_reach_the_relay_and_nothing_else(settings, project, prod, team, smtp_server, caplog,
                                                           django_capture_on_commit_callbacks):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from tests.workflows.notify_fixtures import free_port

    def authenticator(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"slipway", b"relay-pa55word"),
                          handled=False)  # aiosmtpd answers 535 itself

    relay = Controller(smtp_server, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                       auth_require_tls=False, auth_required=True)
    relay.start()
    try:
        settings.EMAIL_PORT, settings.EMAIL_HOST_USER = relay.port, "slipway"
        caplog.set_level(logging.DEBUG)
        settings.EMAIL_HOST_PASSWORD = "a-wrong-pa55word"
        _, refused = filed(team["developer"], project, prod, django_capture_on_commit_callbacks)
        assert set(deliver_now(refused)) == {"failed"}
        settings.EMAIL_HOST_PASSWORD = "relay-pa55word"
        release, accepted = filed(team["developer"], project, prod, django_capture_on_commit_callbacks)
        assert set(deliver_now(accepted)) == {"delivered"}
    finally:
        relay.stop()

    errors = set(NotificationDelivery.objects.filter(notification=refused, medium="email")
                 .values_list("last_error", flat=True))
    assert errors == {"mail relay 127.0.0.1 answered 535"}  # wrong credentials: not retried, nothing echoed
    assert len(smtp_server.messages) == 3
    assert "pa55word" not in caplog.text
