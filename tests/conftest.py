import pytest
from rest_framework.test import APIClient

from tests.deployments.factories import MembershipFactory, ProjectFactory, UserFactory


@pytest.fixture
def api():
    """An API client; ``api.as_user(user)`` authenticates it."""
    client = APIClient()

    def as_user(user):
        client.force_authenticate(user)
        return client

    client.as_user = as_user
    return client


@pytest.fixture
def project(db):
    return ProjectFactory(slug="shop")


@pytest.fixture
def developer(project):
    return MembershipFactory(project=project, role="developer", user=UserFactory(username="dev")).user


@pytest.fixture
def maintainer(project):
    return MembershipFactory(project=project, role="maintainer", user=UserFactory(username="lead")).user


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")


@pytest.fixture
def finance_user(db):
    return UserFactory(username="money", finance=True)


@pytest.fixture
def staff(db):
    return UserFactory(username="ops", is_staff=True)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2's deliberate slowness buys nothing in tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
