"""CI tokens belong to the user who created them: a release a token files is that user's (no self-approval),
and a token stops working when revoked, when it expires, or when its owner may no longer file releases."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from deployments.models import Environment, ProjectMembership
from tests.deployments.factories import ApplicationFactory, ClusterFactory, MembershipFactory, UserFactory
from tests.workflows.factories import PINNED, ci_token_row
from workflows.choices import AuditAction
from workflows.models import AuditEvent, CiToken, Release

pytestmark = pytest.mark.django_db


@pytest.fixture
def prod(db):
    return Environment.objects.create(name="prod", cluster=ClusterFactory(), required_approvals=1)


@pytest.fixture
def app(project):
    return ApplicationFactory(project=project, name="api", image="registry.example.com/shop/api")


@pytest.fixture
def approver(project):
    return MembershipFactory(project=project, role="approver", user=UserFactory(username="appr")).user


def hook(api, token: str, version: str = "1.0"):
    return api.post("/api/v1/hooks/ci/shop/", {"application": "api", "environment": "prod", "version": version,
                                                "image": PINNED.format(version=version)},
                    format="json", HTTP_AUTHORIZATION=f"Bearer {token}")


def create_token(api, user, **body):
    response = api.as_user(user).post("/api/v1/projects/shop/ci-tokens/", {"name": "jenkins", **body}, format="json")
    api.force_authenticate(None)
    return response


def test_a_ci_release_is_its_owners_and_the_owner_cannot_approve_it(api, maintainer, approver, app, prod):
    # given a maintainer's CI token, in an environment that forbids self-approval
    token = create_token(api, maintainer).json()["token"]

    # when CI files a release with it
    filed = hook(api, token)

    # then the release is the maintainer's, filed via CI, and only someone else may approve it
    assert filed.status_code == 201, filed.json()
    release = Release.objects.get()
    assert (release.requested_by, release.requested_via) == (maintainer, "ci")
    own = api.as_user(maintainer).post(f"/api/v1/releases/{release.id}/approve/", {}, format="json")
    assert own.status_code == 403 and own.json()["code"] == "self_approval"
    other = api.as_user(approver).post(f"/api/v1/releases/{release.id}/approve/", {}, format="json")
    assert other.status_code == 200 and other.json()["state"] == "approved"


def test_the_token_is_shown_once_and_its_life_is_audited(api, maintainer, app, prod):
    created = create_token(api, maintainer, expires_in_days=7)
    token = created.json()["token"]

    listed = api.as_user(maintainer).get("/api/v1/projects/shop/ci-tokens/").json()["results"]
    revoked = api.as_user(maintainer).post(f"/api/v1/projects/shop/ci-tokens/{created.json()['id']}/revoke/")
    again = api.as_user(maintainer).post(f"/api/v1/projects/shop/ci-tokens/{created.json()['id']}/revoke/")

    assert created.status_code == 201 and created.json()["owner"] == "lead"
    expires = timezone.now() + timedelta(days=7) - CiToken.objects.get().expires_at
    assert abs(expires) < timedelta(minutes=1)
    assert [row["prefix"] for row in listed] == [token[:8]] and token not in str(listed)
    assert "token" not in listed[0] and "token_hash" not in listed[0]
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None and again.status_code == 200
    events = AuditEvent.objects.filter(target_type="workflows.citoken").order_by("id")
    assert [(e.action, e.actor) for e in events] == [(AuditAction.OBJECT_CREATED, "user:lead"),
                                                     (AuditAction.OBJECT_CHANGED, "user:lead")]
    stored = CiToken.objects.get()
    assert all(token not in str(e.after) and stored.token_hash not in str(e.after) for e in events)


def test_a_revoked_token_is_refused(api, maintainer, app, prod):
    created = create_token(api, maintainer).json()
    api.as_user(maintainer).post(f"/api/v1/projects/shop/ci-tokens/{created['id']}/revoke/")
    api.force_authenticate(None)

    response = hook(api, created["token"])

    assert response.status_code == 401 and not Release.objects.exists()


@pytest.mark.parametrize("state", ["expired", "revoked", "ownerless"])
def test_expired_revoked_and_ownerless_tokens_are_refused_like_unknown_ones(api, developer, app, prod, state):
    fields = {"expired": {"expires_in": timedelta(seconds=-1)},
              "revoked": {"revoked_at": timezone.now()},
              "ownerless": {}}[state]
    token = ci_token_row(project=app.project, owner=None if state == "ownerless" else developer, **fields)

    response = hook(api, token)

    assert response.status_code == 401 and response.json() == hook(api, "no-such-token").json()
    assert not Release.objects.exists() and CiToken.objects.get().last_used_at is None


@pytest.mark.parametrize("change", ["removed", "demoted"])
def test_a_token_stops_filing_when_its_owner_loses_the_role(api, developer, project, app, prod, change):
    token = ci_token_row(project=project, owner=developer)
    membership = ProjectMembership.objects.filter(user=developer, project=project)
    membership.delete() if change == "removed" else membership.update(role="approver")

    response = hook(api, token)

    assert response.status_code == 403 and not Release.objects.exists()


def test_only_maintainers_manage_tokens(api, developer, outsider, maintainer, project):
    ci_token_row(project=project, owner=maintainer)

    assert create_token(api, developer).status_code == 403
    assert api.as_user(developer).get("/api/v1/projects/shop/ci-tokens/").status_code == 403
    assert api.as_user(outsider).get("/api/v1/projects/shop/ci-tokens/").status_code == 404
    too_long = create_token(api, maintainer, expires_in_days=10_000)
    assert too_long.status_code == 400 and "expires_in_days" in too_long.json()["extra"]["fields"]
    assert CiToken.objects.count() == 1


def test_the_admin_creates_and_revokes_through_the_services(client, maintainer, project):
    maintainer.is_staff = True
    maintainer.save()
    maintainer.user_permissions.add(*Permission.objects.filter(content_type__model="citoken"))
    client.force_login(maintainer)

    client.post(reverse("admin:workflows_citoken_add"), {"project": project.id, "name": "gitlab",
                                                         "expires_in_days": 30})
    token = CiToken.objects.get()
    client.post(reverse("admin:workflows_citoken_changelist"),
                {"action": "revoke", "_selected_action": [token.id]})

    token.refresh_from_db()
    assert token.owner == maintainer and token.revoked_at is not None
    assert AuditEvent.objects.filter(target_type="workflows.citoken", actor="user:lead").count() == 2
