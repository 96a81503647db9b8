"""One decision per action, whatever the door: the API and the console refuse (and allow) the same things.

The table below is the rule (``deployments.permissions``/``workflows.permissions``); each row is asked
through the API and through the console, which must both answer it, and the console must show a button or
link exactly where it would be obeyed.
"""
import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from deployments import services as deployments
from deployments.manifests import ReleaseConfig
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, MembershipFactory, UserFactory, deploy_spec
from tests.workflows.factories import PINNED, file_release

pytestmark = pytest.mark.django_db

ROLES = ["developer", "approver", "maintainer", "finance"]
# action → the roles that may do it (the developer filed the release; self-approval is off)
ALLOWED = {
    "pod_list": {"developer", "approver", "maintainer", "finance"},
    "pod_logs": {"developer", "approver", "maintainer"},
    "scale": {"developer", "maintainer"},
    "approve": {"approver", "maintainer"},
    "cancel": {"developer", "maintainer"},
    "retry": {"developer", "maintainer"},
    "rollback": {"developer", "maintainer"},
}
REFUSALS = ("Only ", "You filed")  # how the console says "not allowed" (other messages: allowed, wrong state)


@pytest.fixture
def world(project, sandbox_cluster, developer, api):
    # given web running in dev (two pods), and a release of it to prod awaiting one approval, filed by the developer
    dev = EnvironmentFactory(name="dev", cluster=sandbox_cluster, rollout_deadline_seconds=5, required_approvals=0)
    prod = EnvironmentFactory(name="prod", cluster=sandbox_cluster, required_approvals=1, rank=2)
    app = ApplicationFactory(project=project, name="web", replicas=2)
    revision = deployments.deployment_apply(application_id=app.id, environment_id=dev.id,
                                            image=PINNED.format(version="1"), config=ReleaseConfig(env={}, files={}),
                                            release="1", spec=deploy_spec(app, dev))
    deployments.deployment_verify(revision_id=revision.id, poll_interval=0.05)
    pod = api.as_user(developer).get(f"/api/v1/applications/{app.id}/pods/?environment=dev").json()[0]["name"]
    api.force_authenticate(None)
    release = file_release(actor=developer, application=app, environment=prod)
    users = {
        "developer": developer,
        "approver": MembershipFactory(project=project, role="approver", user=UserFactory(username="appr")).user,
        "maintainer": MembershipFactory(project=project, role="maintainer", user=UserFactory(username="lead")).user,
        "finance": UserFactory(username="money", finance=True),
    }
    return {"app": app, "pod": pod, "release": release, "users": users}


def api_refused(api, world, action: str) -> bool:
    app, release, pod = world["app"], world["release"], world["pod"]
    calls = {
        "pod_list": lambda: api.get(f"/api/v1/applications/{app.id}/pods/?environment=dev"),
        "pod_logs": lambda: api.get(f"/api/v1/applications/{app.id}/pods/{pod}/logs/?environment=dev&tail=3"),
        "scale": lambda: api.post(f"/api/v1/applications/{app.id}/scale/", {"environment": "dev", "replicas": 2},
                                  format="json"),
        "approve": lambda: api.post(f"/api/v1/releases/{release.id}/approve/", {}, format="json"),
        "cancel": lambda: api.post(f"/api/v1/releases/{release.id}/cancel/"),
        "retry": lambda: api.post(f"/api/v1/releases/{release.id}/retry/"),
        "rollback": lambda: api.post(f"/api/v1/releases/{release.id}/rollback/", {}, format="json"),
    }
    response = calls[action]()
    assert response.status_code < 500, response.content
    return response.status_code == 403


def console_refused(client, world, action: str) -> bool:
    app, release, pod = world["app"], world["release"], world["pod"]
    if action == "pod_list":
        return pod not in client.get(reverse("console:application-detail", args=[app.id])).content.decode()
    if action == "pod_logs":
        response = client.get(reverse("console:pod-logs", args=[app.id]), {"environment": "dev", "pod": pod})
        assert response.status_code in (200, 403)
        return response.status_code == 403
    posts = {
        "scale": (reverse("console:application-scale", args=[app.id]), {"environment": "dev", "replicas": 2}),
        "approve": (reverse("console:release-approve", args=[release.id]), {}),
        "cancel": (reverse("console:release-cancel", args=[release.id]), {}),
        "retry": (reverse("console:release-retry", args=[release.id]), {}),
        "rollback": (reverse("console:release-rollback", args=[release.id]), {}),
    }
    url, data = posts[action]
    response = client.post(url, data)
    assert response.status_code == 302
    message = [str(m) for m in get_messages(response.wsgi_request)][-1]
    return message.startswith(REFUSALS)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(ALLOWED))
def test_api_and_console_answer_alike(api, client, world, action, role):
    user = world["users"][role]
    client.force_login(user)
    expected_refusal = role not in ALLOWED[action]

    assert api_refused(api.as_user(user), world, action) == expected_refusal
    assert console_refused(client, world, action) == expected_refusal


@pytest.mark.parametrize("role", ROLES)
def test_the_console_shows_what_it_would_obey(client, world, role):
    # when each role opens the application and the release awaiting approval
    client.force_login(world["users"][role])
    application = client.get(reverse("console:application-detail", args=[world["app"].id])).content.decode()
    release = client.get(reverse("console:release-detail", args=[world["release"].id])).content.decode()

    # then each button or link is there exactly where the action is allowed (the release can be cancelled
    # and decided on; retry and roll back are not possible in its state, for anyone)
    shown = {
        "scale": '<button type="submit">Scale</button>' in application,
        "pod_logs": bool(re.search(r'href="[^"]*/logs/\?environment=dev', application)),
        "pod_list": world["pod"] in application,
        "approve": ">Approve</button>" in release,
        "cancel": "Cancel release" in release,
    }
    assert shown == {action: role in ALLOWED[action] for action in shown}
    assert "Retry from the failed step" not in release and "Roll back…" not in release
