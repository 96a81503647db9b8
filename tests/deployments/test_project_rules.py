"""Objects that name a project (memberships, applications, middleware, webhooks, CI tokens, budgets, packages):
creating or changing one needs the right in the project it ends up in as well as in the one it leaves, and
memberships and applications never move, through the API and the admin alike.

The attacker: ``lead`` maintains ``shop`` and is only a developer (or approver) of ``rival``; ``lead`` is staff
with every model permission, so only Slipway's own rule stands in the way in the admin.
"""
from datetime import date

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.models import model_to_dict
from django.urls import reverse

from billing.models import Budget
from deployments.models import Application, ProjectMembership
from tests.billing.factories import BudgetFactory
from tests.deployments.factories import (
    ApplicationFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    base_image,
    middleware_instance,
)
from workflows.choices import AuditAction
from workflows.models import AuditEvent, CiToken, ProjectWebhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def rival(db):
    return ProjectFactory(slug="rival")


@pytest.fixture
def lead(project, rival):
    """Maintainer of shop, developer of rival, staff with every permission of the models below."""
    user = UserFactory(username="lead", is_staff=True)
    MembershipFactory(project=project, user=user, role="maintainer")
    MembershipFactory(project=rival, user=user, role="developer")
    apps = ["deployments", "workflows", "billing"]
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=apps))
    return user


@pytest.fixture
def colleague(project):
    return MembershipFactory(project=project, role="developer", user=UserFactory(username="colleague"))


# -- memberships, through the API ------------------------------------------------------------------------------
def test_a_membership_cannot_be_patched_into_a_project_you_do_not_maintain(api, lead, colleague, rival):
    response = api.as_user(lead).patch(f"/api/v1/memberships/{colleague.id}/", {"project": "rival"}, format="json")

    assert response.status_code == 403, response.json()
    assert "rival" in response.json()["message"]
    assert ProjectMembership.objects.get(id=colleague.id).project.slug == "shop"


def test_a_membership_never_moves_even_between_projects_you_maintain(api, lead, colleague, rival):
    ProjectMembership.objects.filter(user=lead, project=rival).update(role="maintainer")

    response = api.as_user(lead).patch(f"/api/v1/memberships/{colleague.id}/", {"project": "rival", "role": "approver"},
                                       format="json")

    assert response.status_code == 400 and "project" in response.json()["extra"]["fields"]
    assert ProjectMembership.objects.filter(id=colleague.id, project__slug="shop", role="developer").exists()


def test_creating_a_membership_needs_maintainer_rights_there(api, lead, rival, colleague):
    response = api.as_user(lead).post("/api/v1/memberships/", {"project": "rival", "user": "colleague",
                                                               "role": "maintainer"}, format="json")

    assert response.status_code == 403  # no planting an accomplice where you only develop
    assert not ProjectMembership.objects.filter(user=colleague.user, project=rival).exists()


def test_membership_changes_go_through_the_services_and_are_audited(api, lead, colleague):
    changed = api.as_user(lead).patch(f"/api/v1/memberships/{colleague.id}/", {"role": "approver"}, format="json")
    duplicate = api.as_user(lead).post("/api/v1/memberships/", {"project": "shop", "user": "colleague",
                                                                "role": "maintainer"}, format="json")
    removed = api.as_user(lead).delete(f"/api/v1/memberships/{colleague.id}/")

    assert changed.status_code == 200 and changed.json()["role"] == "approver"
    assert duplicate.status_code == 400
    assert removed.status_code == 204 and not ProjectMembership.objects.filter(id=colleague.id).exists()
    events = AuditEvent.objects.filter(target_type="deployments.projectmembership", target_id=str(colleague.id))
    assert list(events.order_by("id").values_list("action", flat=True)) == [
        AuditAction.OBJECT_CHANGED, AuditAction.OBJECT_DELETED]


# -- memberships, through the admin ----------------------------------------------------------------------------
def test_the_admin_adds_no_membership_where_you_do_not_maintain(client, lead, rival, colleague):
    client.force_login(lead)

    response = client.post(reverse("admin:deployments_projectmembership_add"),
                           {"project": rival.id, "user": colleague.user.id, "role": "maintainer"})

    assert response.status_code == 200 and "Only a project maintainer of &#x27;rival&#x27;" in response.content.decode()
    assert not ProjectMembership.objects.filter(project=rival, user=colleague.user).exists()


def test_the_admin_does_not_move_a_membership(client, lead, rival, colleague):
    client.force_login(lead)

    client.post(reverse("admin:deployments_projectmembership_change", args=[colleague.id]),
                {"project": rival.id, "user": lead.id, "role": "approver"})

    membership = ProjectMembership.objects.get(id=colleague.id)
    assert (membership.project.slug, membership.user.username, membership.role) == ("shop", "colleague", "approver")
    assert AuditEvent.objects.filter(target_type="deployments.projectmembership", action=AuditAction.OBJECT_CHANGED,
                                     actor="user:lead").count() == 1


def test_the_admin_lets_no_developer_change_memberships(client, lead, rival):
    other = MembershipFactory(project=rival, role="approver", user=UserFactory(username="someone"))
    client.force_login(lead)

    client.post(reverse("admin:deployments_projectmembership_change", args=[other.id]),
                {"project": rival.id, "user": other.user.id, "role": "maintainer"})
    client.post(reverse("admin:deployments_projectmembership_delete", args=[other.id]), {"post": "yes"})

    assert ProjectMembership.objects.get(id=other.id).role == "approver"


# -- applications and middleware instances ---------------------------------------------------------------------
def application_form(app: Application, **changes) -> dict:
    data = {key: value for key, value in model_to_dict(app).items() if value is not None}
    data.update(allowed_callers=[a.id for a in app.allowed_callers.all()],
                uses_middleware=[m.id for m in app.uses_middleware.all()], **changes)
    return data


def test_the_admin_does_not_move_an_application_to_another_project(client, lead, project, rival):
    app = ApplicationFactory(project=project, name="api")
    client.force_login(lead)

    response = client.post(reverse("admin:deployments_application_change", args=[app.id]),
                           application_form(app, project=rival.id))

    assert response.status_code == 200 and "cannot move to another project" in response.content.decode()
    assert Application.objects.get(id=app.id).project == project


def test_the_admin_does_not_move_a_middleware_instance_to_another_project(client, lead, project, rival):
    base_image("redis")
    instance = middleware_instance(project, template="redis", name="cache")
    client.force_login(lead)

    client.post(reverse("admin:deployments_application_change", args=[instance.application.id]),
                application_form(instance.application, project=rival.id))

    assert Application.objects.get(id=instance.application.id).project == project


def test_the_admin_changes_no_application_where_you_only_approve(client, lead, rival):
    app = ApplicationFactory(project=rival, name="theirs", replicas=1)
    ProjectMembership.objects.filter(user=lead, project=rival).update(role="approver")
    client.force_login(lead)

    client.post(reverse("admin:deployments_application_change", args=[app.id]), application_form(app, replicas=20))
    client.post(reverse("admin:deployments_application_add"),
                {**application_form(app, name="planted"), "allowed_callers": [], "uses_middleware": []})

    assert Application.objects.get(id=app.id).replicas == 1
    assert not Application.objects.filter(name="planted").exists()


# -- webhooks, CI tokens, budgets -------------------------------------------------------------------------------
def test_the_admin_does_not_move_a_webhook_where_you_do_not_maintain(client, lead, project, rival):
    hook = ProjectWebhook.objects.create(project=project, url="https://hooks.example.com/shop", secret="s3cret",
                                         events=["succeeded"])
    client.force_login(lead)

    response = client.post(reverse("admin:workflows_projectwebhook_change", args=[hook.id]),
                           {"project": rival.id, "url": "https://evil.example.com/collect", "secret": "",
                            "events": ["succeeded"], "active": "on"})

    assert response.status_code == 200
    hook.refresh_from_db()
    assert (hook.project, hook.url) == (project, "https://hooks.example.com/shop")


def test_the_admin_creates_no_ci_token_where_you_do_not_maintain(client, lead, rival):
    client.force_login(lead)

    response = client.post(reverse("admin:workflows_citoken_add"),
                           {"project": rival.id, "name": "mine", "expires_in_days": 30})

    assert response.status_code == 200 and not CiToken.objects.exists()


def test_the_api_creates_no_ci_token_where_you_do_not_maintain(api, lead, rival):
    response = api.as_user(lead).post("/api/v1/projects/rival/ci-tokens/", {"name": "mine"}, format="json")

    assert response.status_code == 403 and not CiToken.objects.exists()


def test_budgets_are_finance_business_in_the_admin_too(client, lead, project):
    budget = BudgetFactory(project=project)
    client.force_login(lead)

    inline = {"alerts-TOTAL_FORMS": 0, "alerts-INITIAL_FORMS": 0}
    added = client.post(reverse("admin:billing_budget_add"),
                        {"project": project.id, "month": "2026-04-01", "amount": "1.00", "currency": "EUR", **inline})
    changed = client.post(reverse("admin:billing_budget_change", args=[budget.id]),
                          {"project": project.id, "month": "2026-03-01", "amount": "999999.00", "currency": "EUR",
                           **inline})

    assert "Only finance or platform admins may manage budgets" in added.content.decode()
    assert changed.status_code == 403  # view only

    assert list(Budget.objects.values_list("month", "amount")) == [(date(2026, 3, 1), budget.amount)]


def test_finance_moves_budgets_through_the_api_but_no_one_else_does(api, lead, finance_user, project, rival):
    budget = BudgetFactory(project=project)

    refused = api.as_user(lead).patch(f"/api/v1/billing/budgets/{budget.id}/", {"project": "rival"}, format="json")
    moved = api.as_user(finance_user).patch(f"/api/v1/billing/budgets/{budget.id}/", {"project": "rival"}, format="json")

    assert refused.status_code == 403
    assert moved.status_code == 200 and Budget.objects.get(id=budget.id).project == rival


# -- packages ----------------------------------------------------------------------------------------------------
def test_packages_go_only_where_you_may_edit_and_never_move(api, lead, rival, project):
    ProjectMembership.objects.filter(user=lead, project=rival).update(role="approver")
    refused = api.as_user(lead).post("/api/v1/packages/", {
        "project": "rival", "file": SimpleUploadedFile("app.war", b"PK\x03\x04 war")}, format="multipart")
    mine = api.as_user(lead).post("/api/v1/packages/", {
        "project": "shop", "file": SimpleUploadedFile("app.war", b"PK\x03\x04 war")}, format="multipart")
    moved = api.as_user(lead).patch(f"/api/v1/packages/{mine.json()['id']}/", {"project": "rival"}, format="json")

    assert refused.status_code == 403 and mine.status_code == 201
    assert moved.status_code == 405


def test_the_admin_changes_a_project_only_for_its_maintainers(client, lead, project, rival):
    client.force_login(lead)
    data = {"slug": "rival", "name": "Taken over", "cost_center": "CC-EVIL", "description": "",
            "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0}

    refused = client.post(reverse("admin:deployments_project_change", args=[rival.id]), data)
    allowed = client.post(reverse("admin:deployments_project_change", args=[project.id]),
                          {**data, "slug": "shop", "name": "Shop"})

    assert refused.status_code == 403 and allowed.status_code == 302
    rival.refresh_from_db()
    assert rival.name != "Taken over"


def test_the_admin_lists_only_the_projects_you_see(client, lead, project):
    hidden = ProjectFactory(slug="hidden")
    theirs = MembershipFactory(project=hidden, role="maintainer", user=UserFactory(username="stranger"))
    client.force_login(lead)

    listed = client.get(reverse("admin:deployments_projectmembership_changelist")).content.decode()
    opened = client.get(reverse("admin:deployments_projectmembership_change", args=[theirs.id]))

    assert "stranger" not in listed and "lead" in listed
    assert opened.status_code == 302  # the admin's "does not exist" redirect


def test_the_admin_shows_no_revisions_or_packages_of_projects_you_do_not_see(client, lead, project):
    from deployments.models import Package, Revision
    from tests.deployments.factories import EnvironmentFactory

    hidden = ProjectFactory(slug="hidden")
    environment = EnvironmentFactory(name="dev")
    for owner in (project, hidden):
        app = ApplicationFactory(project=owner, name=f"{owner.slug}-app")
        Revision.objects.create(application=app, environment=environment, number=1, image=f"{owner.slug}/img",
                                manifests=[], config_hash="0" * 64, replicas=1, release="1")
        Package.objects.create(project=owner, filename=f"{owner.slug}.war", file="x.war", size=1, sha256="0" * 64)
    client.force_login(lead)

    revisions = client.get(reverse("admin:deployments_revision_changelist")).content.decode()
    packages = client.get(reverse("admin:deployments_package_changelist")).content.decode()

    assert "shop/img" in revisions and "hidden/img" not in revisions
    assert "shop.war" in packages and "hidden.war" not in packages
