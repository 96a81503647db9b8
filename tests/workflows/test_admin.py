"""The release admin, where approvers sign off: what it shows, and that its buttons go through the services."""
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from deployments.models import Revision
from tests.deployments.factories import (
    ApplicationFactory,
    EnvironmentFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from workflows import services
from workflows.choices import AuditAction, FreezeKind, ReleaseState, Step, StepStatus
from workflows.models import Approval, AuditEvent, CiToken, FreezeWindow, ProjectWebhook, Release, StepRun
from workflows.services.pipeline import release_fail, release_lock

pytestmark = pytest.mark.django_db

IMAGE = "registry.example.com/shop/api"


def admin_user(username: str, project=None, role: str = "approver"):
    """A staff user with the view permission approvers get, and optionally a role in ``project``."""
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_release", content_type__app_label="workflows"))
    if project is not None:
        MembershipFactory(project=project, user=user, role=role)
    return user


def file(actor, app, env, version="1.0", config=None) -> Release:
    return services.release_file(actor=actor, application=app, environment=env, version=version,
                                 image=f"{IMAGE}:{version}@sha256:{'c' * 64}", config=config)


def change_url(release: Release) -> str:
    return reverse("admin:workflows_release_change", args=[release.id])


def post_action(client, user, release: Release, action: str, comment: str = ""):
    client.force_login(user)
    return client.post(reverse(f"admin:workflows_release_{action}", args=[release.id]), {"comment": comment})


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def lane(project):
    """An application of ``project`` and a production environment that needs two approvals."""
    return ApplicationFactory(project=project, name="api", replicas=3), EnvironmentFactory(name="prod", required_approvals=2)


@pytest.fixture
def approvers(project):
    return admin_user("approver1", project), admin_user("approver2", project)


def test_change_page_shows_what_changes_and_the_approve_button(client, lane, developer, approvers):
    # given: 0.9 runs now, deployed by an earlier release (its state does not matter here)
    app, env = lane
    live = Revision.objects.create(application=app, environment=env, number=1, image=f"{IMAGE}@sha256:{'0' * 64}",
                                   replicas=2, manifests=[], manifests_digest="d")
    Release.objects.create(
        application=app, environment=env, version="0.9", image=f"{IMAGE}:0.9", config_hash="h", revision=live,
        state=ReleaseState.SUCCEEDED,
        config={"env": {"LOG_LEVEL": "info", "LEGACY_MODE": "on"}, "files": {"app.conf": "pool=5\nname=api\n"}},
    )
    release = file(developer, app, env, config={"env": {"LOG_LEVEL": "debug", "FEATURE_X": "1"},
                                                "files": {"app.conf": "pool=10\nname=api\n"}})

    # when
    client.force_login(approvers[0])
    response = client.get(change_url(release))

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert f"{IMAGE}@sha256:{'0' * 64}" in html and f"{IMAGE}:1.0" in html
    changes = {(c["kind"], c["name"]): c for c in response.context["config_changes"]}
    assert {key: c["change"] for key, c in changes.items()} == {
        ("env var", "FEATURE_X"): "added", ("env var", "LEGACY_MODE"): "removed",
        ("env var", "LOG_LEVEL"): "changed", ("file", "app.conf"): "changed",
    }
    assert "-pool=5\n+pool=10" in changes[("file", "app.conf")]["diff"]
    assert "<code>info</code>" in html and "<code>debug</code>" in html
    assert reverse("admin:workflows_release_approve", args=[release.id]) in html
    assert "Approvals: 0 of 2 required" in html


def test_two_approvals_approve_the_release(client, lane, developer, approvers):
    release = file(developer, *lane)

    response = post_action(client, approvers[0], release, "approve", "looks good")
    release.refresh_from_db()
    assert response.status_code == 302 and response.url == change_url(release)
    assert release.state == ReleaseState.REQUESTED
    assert any("Approval recorded" in text for text in message_texts(response))

    post_action(client, approvers[1], release, "approve")
    release.refresh_from_db()
    assert release.state == ReleaseState.APPROVED
    assert list(release.approvals.values_list("approver__username", "comment")) == [
        ("approver1", "looks good"), ("approver2", "")
    ]


def test_approving_your_own_release_shows_the_service_error(client, project, lane):
    lead = admin_user("lead", project, role="maintainer")
    release = file(lead, *lane)

    response = post_action(client, lead, release, "approve")

    assert response.status_code == 302
    assert any("does not allow approving your own release" in text for text in message_texts(response))
    assert not Approval.objects.exists()
    release.refresh_from_db()
    assert release.state == ReleaseState.REQUESTED


def test_reject_rejects_the_release(client, lane, developer, approvers):
    release = file(developer, *lane)

    post_action(client, approvers[0], release, "reject", "not during the sale")

    release.refresh_from_db()
    assert release.state == ReleaseState.REJECTED
    assert release.approvals.get().comment == "not during the sale"


def test_actions_accept_only_post(client, lane, developer, approvers):
    release = file(developer, *lane)
    client.force_login(approvers[0])

    response = client.get(reverse("admin:workflows_release_approve", args=[release.id]))

    assert response.status_code == 405
    assert not Approval.objects.exists()


def test_releases_are_neither_added_nor_edited_here(client, lane, developer):
    release = file(developer, *lane)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    assert client.get(reverse("admin:workflows_release_add")).status_code == 403
    response = client.post(change_url(release), {"version": "2.0", "state": ReleaseState.APPROVED})

    assert response.status_code == 403
    release.refresh_from_db()
    assert (release.version, release.state) == ("1.0", ReleaseState.REQUESTED)


def test_cancel_button_for_editors_and_cancel_goes_through_the_service(client, project, lane, developer, approvers):
    release = file(developer, *lane)
    lead = admin_user("lead", project, role="maintainer")
    client.force_login(approvers[0])
    assert reverse("admin:workflows_release_cancel", args=[release.id]) not in client.get(change_url(release)).content.decode()

    client.force_login(lead)
    assert reverse("admin:workflows_release_cancel", args=[release.id]) in client.get(change_url(release)).content.decode()
    post_action(client, lead, release, "cancel")

    release.refresh_from_db()
    assert release.state == ReleaseState.CANCELLED


def test_failed_release_shows_its_failure_and_retry_sends_it_back(client, project, developer, approvers):
    # given: a release that failed while building
    app, env = ApplicationFactory(project=project), EnvironmentFactory(required_approvals=1)
    release = file(developer, app, env)
    services.approval_grant(release_id=release.id, actor=approvers[0])
    services.lane_advance(application_id=app.id, environment_id=env.id)
    StepRun.objects.create(release=release, step=Step.BUILD, status=StepStatus.FAILED, finished_at=timezone.now(),
                           log="resolving registry.example.com/shop/api:1.0\n", error="manifest unknown")
    with transaction.atomic():
        release_fail(release_lock(release.id), step="build", reason="manifest unknown: no such tag 1.0")
    lead = admin_user("lead", project, role="maintainer")

    # when
    client.force_login(lead)
    html = client.get(change_url(release)).content.decode()
    post_action(client, lead, release, "retry")

    # then
    assert "manifest unknown: no such tag 1.0" in html
    assert "overflow: auto\">resolving registry.example.com/shop/api:1.0" in html  # the step's log, in a <pre>
    assert reverse("admin:workflows_release_retry", args=[release.id]) in html
    release.refresh_from_db()
    assert release.state == ReleaseState.APPROVED


def test_approved_release_says_why_it_waits(client, project, developer, approvers):
    app, env = ApplicationFactory(project=project), EnvironmentFactory(name="prod", required_approvals=1)
    now = timezone.now()
    FreezeWindow.objects.create(environment=env, kind=FreezeKind.ONCE, starts_at=now - timedelta(hours=1),
                                ends_at=now + timedelta(hours=1), reason="Black Friday")
    release = file(developer, app, env)

    post_action(client, approvers[0], release, "approve")
    html = client.get(change_url(release)).content.decode()

    assert "Waiting:</strong> environment prod is frozen until" in html


def test_awaiting_my_approval_lists_what_i_may_still_decide(client, project, developer):
    # given: I lead "shop" (I may file and approve) and develop in "blog"
    me = admin_user("lead", project, role="maintainer")
    colleague = admin_user("approver2", project)
    app, env = ApplicationFactory(project=project), EnvironmentFactory(required_approvals=2)
    self_ok = EnvironmentFactory(required_approvals=2, allow_self_approval=True)
    blog = ProjectFactory(slug="blog")
    MembershipFactory(project=blog, user=me, role="developer")

    waiting = file(developer, app, env, "1")
    mine_self_allowed = file(me, app, self_ok, "2")
    file(me, app, env, "3")  # mine: I may not approve it
    decided = file(developer, app, env, "4")
    services.approval_grant(release_id=decided.id, actor=me)
    changed = file(developer, app, env, "5")  # my approval was voided by a change
    services.approval_grant(release_id=changed.id, actor=me)
    services.release_change(release_id=changed.id, actor=developer, version="5.1")
    rejected = file(developer, app, env, "6")
    services.approval_reject(release_id=rejected.id, actor=colleague)
    file(me, ApplicationFactory(project=blog), env, "7")  # blog: I only develop there

    # when
    client.force_login(me)
    response = client.get(reverse("admin:workflows_release_changelist"), {"awaiting": "me"})

    # then
    assert response.status_code == 200
    assert {r.id for r in response.context["cl"].result_list} == {waiting.id, mine_self_allowed.id, changed.id}


def test_non_members_cannot_see_or_decide_on_a_release(client, lane, developer):
    release = file(developer, *lane)
    stranger = admin_user("stranger", ProjectFactory(slug="blog"))
    client.force_login(stranger)

    assert client.get(change_url(release)).status_code == 404
    assert post_action(client, stranger, release, "approve").status_code == 404
    assert not Approval.objects.exists()
    listed = client.get(reverse("admin:workflows_release_changelist")).context["cl"].result_list
    assert list(listed) == []


def test_changelist_query_count_does_not_grow_with_releases(client, project, lane, developer, approvers):
    app, env = lane

    def changelist_queries() -> int:
        client.force_login(approvers[0])
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("admin:workflows_release_changelist"))
        assert response.status_code == 200
        return len(queries)

    for version in ("1", "2"):
        services.approval_grant(release_id=file(developer, app, env, version).id, actor=approvers[0])
    with_two = changelist_queries()
    for version in ("3", "4", "5", "6", "7", "8"):
        services.approval_grant(release_id=file(developer, app, env, version).id, actor=approvers[1])

    assert changelist_queries() == with_two
    assert "1 / 2" in client.get(reverse("admin:workflows_release_changelist")).content.decode()


def test_audit_trail_shows_only_my_projects_events(client, project, lane, developer, approvers):
    mine = file(developer, *lane)
    blog = ProjectFactory(slug="blog")
    blogger = MembershipFactory(project=blog, role="developer").user
    file(blogger, ApplicationFactory(project=blog), lane[1])
    auditor = approvers[0]
    auditor.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client.force_login(auditor)

    response = client.get(reverse("admin:workflows_auditevent_changelist"))

    assert {e.release_id for e in response.context["cl"].result_list} == {mine.id}


@pytest.fixture
def platform_admin(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def test_ci_token_is_shown_once_and_only_its_hash_is_stored(client, project, platform_admin):
    client.force_login(platform_admin)

    response = client.post(reverse("admin:workflows_citoken_add"),
                           {"project": project.id, "name": "github", "expires_in_days": 30}, follow=True)

    shown = [re.search(r"The new CI token is (\S+)", text) for text in map(str, response.context["messages"])]
    token = next(match.group(1) for match in shown if match)
    stored = CiToken.objects.get()
    assert stored.token_hash == CiToken.hash_of(token) and stored.prefix == token[:8]
    assert token not in client.get(reverse("admin:workflows_citoken_change", args=[stored.id])).content.decode()
    assert token not in client.get(reverse("admin:workflows_citoken_changelist")).content.decode()
    event = AuditEvent.objects.get(action=AuditAction.OBJECT_CREATED, target_type="workflows.citoken")
    assert token not in str(event.after)


def test_webhook_secret_is_never_rendered_and_kept_when_left_empty(client, project, platform_admin):
    hook = ProjectWebhook.objects.create(project=project, url="https://hooks.example.com/slipway",
                                         secret="hunter2-signing-secret", events=["succeeded"])
    url = reverse("admin:workflows_projectwebhook_change", args=[hook.id])
    client.force_login(platform_admin)
    assert "hunter2-signing-secret" not in client.get(url).content.decode()

    response = client.post(url, {"project": project.id, "url": hook.url, "secret": "", "events": ["failed"],
                                 "active": "on"})

    assert response.status_code == 302
    hook.refresh_from_db()
    assert hook.secret == "hunter2-signing-secret" and hook.events == ["failed"]
    viewer = admin_user("viewer", project)
    viewer.user_permissions.add(Permission.objects.get(codename="view_projectwebhook"))
    client.force_login(viewer)
    page = client.get(url)
    assert page.status_code == 200 and "hunter2-signing-secret" not in page.content.decode()


def test_configuration_pages_render_for_a_platform_admin(client, project, platform_admin):
    env = EnvironmentFactory(name="prod")
    FreezeWindow.objects.create(environment=env, kind=FreezeKind.WEEKLY, start_weekday=4, start_time="16:00",
                                end_weekday=0, end_time="08:00", reason="weekend")
    client.force_login(platform_admin)

    pages = {name: client.get(reverse(f"admin:workflows_{name}")) for name in (
        "freezewindow_changelist", "freezewindow_add", "projectwebhook_changelist", "projectwebhook_add",
        "citoken_changelist", "citoken_add", "auditevent_changelist",
    )}

    assert {name: page.status_code for name, page in pages.items()} == dict.fromkeys(pages, 200)
    assert "every Fri 16:00 – Mon 08:00" in pages["freezewindow_changelist"].content.decode()
