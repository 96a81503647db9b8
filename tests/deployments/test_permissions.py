"""The one rule table, asked directly: every action × every kind of actor."""
import pytest
from django.contrib.auth.models import AnonymousUser

from deployments.permissions import Action, project_may, projects_where
from paas_site.actors import WORKER
from tests.deployments.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

D, A, M, F = "developer", "approver", "maintainer", "finance"
EXPECTED = {
    Action.VIEW: {D, A, M, F}, Action.POD_LIST: {D, A, M, F}, Action.POD_LOGS: {D, A, M},
    Action.READ_PACKAGES: {D, A, M},
    Action.FILE_RELEASE: {D, M}, Action.CHANGE_RELEASE: {D, M}, Action.CANCEL: {D, M}, Action.RETRY: {D, M},
    Action.ROLLBACK: {D, M}, Action.SCALE: {D, M}, Action.EDIT_APPLICATION: {D, M}, Action.UPLOAD_PACKAGE: {D, M},
    Action.MANAGE_MIDDLEWARE: {D, M},
    Action.DECIDE: {A, M},
    Action.DECOMMISSION: {M}, Action.DELETE_APPLICATION: {M}, Action.MANAGE_MEMBERSHIPS: {M},
    Action.MANAGE_WEBHOOKS: {M}, Action.MANAGE_CI_TOKENS: {M}, Action.CHANGE_PROJECT: {M},
    Action.MANAGE_BUDGETS: {F}, Action.MANAGE_PRICES: {F},
}


@pytest.fixture
def people(project):
    users = {role: MembershipFactory(project=project, role=role, user=UserFactory(username=role)).user
             for role in (D, A, M)}
    users[F] = UserFactory(username="money", finance=True)
    return users


def test_every_action_has_a_rule():
    assert set(EXPECTED) == set(Action)


@pytest.mark.parametrize("action", list(Action))
def test_each_role_may_exactly_what_the_table_says(project, people, action):
    allowed = {role for role, user in people.items() if project_may(user, action, project)}
    assert allowed == EXPECTED[action]


@pytest.mark.parametrize("action", list(Action))
def test_admins_may_everything_and_nobody_else_anything_by_default(project, people, action):
    other = ProjectFactory(slug="other")
    admin = UserFactory(username="root", is_superuser=True)
    inactive = MembershipFactory(project=project, role=M, user=UserFactory(username="gone", is_active=False)).user

    assert project_may(admin, action, project) and projects_where(admin, action) is None
    assert not project_may(AnonymousUser(), action, project)
    assert not project_may(WORKER, action, project)  # a component holds no user rights
    assert not project_may(inactive, action, project)
    # a role in one project grants nothing in another (finance's rights are global by design)
    assert all(not project_may(user, action, other) for role, user in people.items() if role != F)


def test_a_string_is_not_an_actor(project):
    with pytest.raises(TypeError):
        project_may("system:worker", Action.VIEW, project)
