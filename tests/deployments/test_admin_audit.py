"""Admin paths that used to change who may do what without an audit event."""
import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from deployments.choices import FINANCE_GROUP
from deployments.models import ProjectMembership
from tests.admin_forms import page_form, submit, with_changes
from tests.billing.factories import BudgetFactory
from tests.deployments.factories import MembershipFactory, ProjectFactory, UserFactory
from workflows.models import AuditEvent, CiToken, ProjectWebhook

pytestmark = pytest.mark.django_db
PASSWORD = "a-new-password-9Kd!"


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def events_about(obj) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(target_type=obj._meta.label_lower, target_id=str(obj.pk)).order_by("id"))


def test_a_role_changed_through_the_project_page_is_never_unaudited(superuser_client):
    # given a developer of the project
    membership = MembershipFactory(project=ProjectFactory(slug="shop"), role="developer")
    url = reverse("admin:deployments_project_change", args=[membership.project.pk])
    values = page_form(superuser_client, url, "project_form")
    row = next(name[: -len("-id")] for name, value in values.items()
               if name.endswith("-id") and value == str(membership.pk))

    # when the admin promotes them to maintainer in the project page's membership rows
    response = superuser_client.post(url, with_changes(values, {f"{row}-role": "maintainer", f"{row}-user":
                                                                 membership.user.pk, "_save": "Save"}))

    # then the role did not change there (rows are read-only: edits go to the membership's own page) ...
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == "developer" or events_about(membership), "the role changed without an audit event"
    # ... and that page links to the audited door
    page = superuser_client.get(url).content.decode()
    assert reverse("admin:deployments_projectmembership_change", args=[membership.pk]) in page


def test_making_someone_superuser_and_adding_them_to_finance_is_audited(superuser_client):
    user = UserFactory(username="mallory")
    finance = Group.objects.get_or_create(name=FINANCE_GROUP)[0]

    submit(superuser_client, reverse("admin:auth_user_change", args=[user.pk]), "user_form",
           {"is_superuser": "on", "is_staff": "on", "groups": [finance.pk]})

    [event] = events_about(user)
    assert event.actor == "user:root" and event.action == "object.changed"
    flags = ("is_superuser", "is_staff", "groups")
    assert {name: event.before[name] for name in flags} == {"is_superuser": False, "is_staff": False, "groups": []}
    assert {name: event.after[name] for name in flags} == {
        "is_superuser": True, "is_staff": True, "groups": [FINANCE_GROUP]}


def test_a_new_user_is_audited_without_their_password_or_its_hash(superuser_client):
    submit(superuser_client, reverse("admin:auth_user_add"), "user_form",
           {"username": "newcomer", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"})

    event = AuditEvent.objects.get(target_type="auth.user", action="object.created", target_repr="newcomer")
    stored_hash = get_user_model().objects.get(username="newcomer").password
    recorded = json.dumps([event.before, event.after, event.message])
    assert "password" not in (event.after or {}) and PASSWORD not in recorded and stored_hash not in recorded


def test_a_password_change_is_audited_without_the_password_or_its_hash(superuser_client):
    user = UserFactory(username="victim")
    url = reverse("admin:auth_user_password_change", args=[user.pk])

    submit(superuser_client, url, "user_form",
           {"password1": PASSWORD, "password2": PASSWORD, "set-password": "Change password", "_save": None})

    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    [event] = events_about(user)
    assert event.after == {"password": "changed"} and event.before is None
    recorded = json.dumps([event.before, event.after, event.message])
    assert PASSWORD not in recorded and user.password not in recorded


def test_group_permissions_changed_in_the_form_are_audited(superuser_client):
    group = Group.objects.create(name="approvers")
    permission = Permission.objects.get(codename="change_cluster")

    submit(superuser_client, reverse("admin:auth_group_change", args=[group.pk]), "group_form",
           {"permissions": [permission.pk]})

    [event] = events_about(group)
    assert event.before == {"permissions": []} and event.after == {"permissions": [str(permission)]}


def test_the_admin_cannot_mint_api_tokens_for_other_users(superuser_client):
    # DRF's token admin created a working token for any user, unaudited, and listed every token in clear.
    assert superuser_client.get("/admin/authtoken/tokenproxy/add/").status_code == 404
    assert superuser_client.get("/admin/authtoken/tokenproxy/").status_code == 404


def test_bulk_delete_of_memberships_is_audited_per_membership(superuser_client):
    memberships = [MembershipFactory(), MembershipFactory()]

    response = superuser_client.post(reverse("admin:deployments_projectmembership_changelist"), {
        "action": "delete_selected", "_selected_action": [m.pk for m in memberships], "post": "yes"})

    assert response.status_code == 302 and not ProjectMembership.objects.exists()
    assert all(events_about(m) for m in memberships)


def project_with_dependents(*, workflows_rows: bool = True):
    """A project with rows its deletion cascades to (the admin refuses to delete CI tokens and webhooks)."""
    project = ProjectFactory(slug="doomed")
    rows = [MembershipFactory(project=project), BudgetFactory(project=project)]
    if workflows_rows:
        rows += [CiToken.objects.create(project=project, name="ci", token_hash=CiToken.hash_of("t"), prefix="t"),
                 ProjectWebhook.objects.create(project=project, url="https://hooks.example.com/x", secret="s")]
    return project, rows


def test_deleting_a_project_in_the_admin_records_what_it_takes_with_it(superuser_client):
    project, rows = project_with_dependents(workflows_rows=False)

    response = superuser_client.post(reverse("admin:deployments_project_delete", args=[project.pk]), {"post": "yes"})

    assert response.status_code == 302
    for row in [project, *rows]:
        assert [e.action for e in events_about(row)] == ["object.deleted"], f"{row._meta.label} left no event"


def test_deleting_a_project_through_the_api_records_what_it_takes_with_it(api):
    project, rows = project_with_dependents()

    response = api.as_user(UserFactory(username="ops", is_superuser=True)).delete(f"/api/v1/projects/{project.slug}/")

    assert response.status_code == 204
    for row in [project, *rows]:
        assert [e.action for e in events_about(row)] == ["object.deleted"], f"{row._meta.label} left no event"
    secret = AuditEvent.objects.get(target_type="workflows.projectwebhook").before["secret"]
    assert secret.startswith("(set ") and "s" != secret


def test_changing_your_own_password_in_the_admin_is_audited_without_it(client):
    user = UserFactory(username="staffer", is_staff=True)
    client.force_login(user)

    response = client.post(reverse("admin:password_change"), {
        "old_password": "correct horse battery staple", "new_password1": PASSWORD, "new_password2": PASSWORD})

    assert response.status_code == 302
    user.refresh_from_db()
    [event] = [event for event in events_about(user) if event.action != "signin.succeeded"]
    assert event.actor == "user:staffer" and event.after == {"password": "changed"}
    recorded = json.dumps([event.before, event.after, event.message])
    assert PASSWORD not in recorded and user.password not in recorded
