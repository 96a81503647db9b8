"""OpenID Connect sign-in against a real provider (oidc-provider on Node.js): in Chromium through the console,
with PKCE (the provider requires it), landing with the mapped roles; a wrong state or nonce is refused."""
from urllib.parse import urlencode

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.test import Client
from mozilla_django_oidc.utils import generate_code_challenge
from playwright.sync_api import expect

from deployments.models import ProjectMembership
from tests.deployments.factories import UserFactory
from tests.workflows.oidc_fixture import (
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    callback_query,
    provider_login,
)
from workflows.choices import MappingGrant
from workflows.directory.oidc import DirectoryOIDCBackend
from workflows.models import AuditEvent, DirectoryAccount, GroupRoleMapping

User = get_user_model()


@pytest.fixture
def mapping(project):
    GroupRoleMapping.objects.create(group="shop-developers", grant=MappingGrant.PROJECT_ROLE, project=project,
                                    role="developer", source="oidc")
    GroupRoleMapping.objects.create(group="shop-approvers", grant=MappingGrant.PROJECT_ROLE, project=project,
                                    role="approver")
    GroupRoleMapping.objects.create(group="shop-approvers", grant=MappingGrant.ADMIN_ACCESS)
    GroupRoleMapping.objects.create(group="finance-team", grant=MappingGrant.FINANCE)
    GroupRoleMapping.objects.create(group="shop-developers", grant=MappingGrant.PLATFORM_ADMIN, source="ldap")


@pytest.mark.django_db(transaction=True)
@pytest.mark.integration
def test_sign_in_with_the_provider_in_the_browser_lands_with_mapped_roles(live_server, browser_pages, oidc_signin,
                                                                         mapping):
    # given
    page = browser_pages()
    page.goto(f"{live_server.url}/login/")
    # when: the console offers the provider, which asks who it is
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.locator("input[name=login]").fill("olivia")
    page.locator("input[name=password]").fill("any")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()
    # then
    expect(page.get_by_text("Signed in as olivia")).to_be_visible()
    olivia = User.objects.get(username="olivia")
    assert [(m.project.slug, m.role, m.via_mapping) for m in ProjectMembership.objects.filter(user=olivia)] == [
        ("shop", "developer", True)]
    assert olivia.groups.filter(name="finance").exists() and not olivia.is_superuser  # that row is LDAP's
    assert DirectoryAccount.objects.get(user=olivia).source == "oidc"
    assert AuditEvent.objects.get(action="signin.succeeded", target_id=str(olivia.pk)).after == {
        "method": "oidc", "groups": ["finance-team", "shop-developers"]}
    assert AuditEvent.objects.filter(action="role.granted", target_id=str(olivia.pk)).count() == 2


def start(client: Client) -> str:
    """Begin a sign-in; returns the provider's authorization URL (checked for PKCE S256)."""
    answer = client.get("/oidc/authenticate/")
    assert answer.status_code == 302
    query = callback_query(answer["Location"])
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43 and query["nonce"]
    return answer["Location"]


def remembered(client: Client, callback: str, **changes: str) -> None:
    """Change what the session remembers of the sign-in ``callback`` answers (as a second tab might)."""
    session = client.session
    states = session["oidc_states"]
    states[callback_query(callback)["state"]].update(changes)
    session["oidc_states"] = states
    session.save()


@pytest.mark.django_db
def test_groups_from_the_id_token_when_userinfo_has_none(oidc_signin, mapping):
    client = Client()
    answer = client.get(provider_login(start(client), "oscar"))
    assert answer.status_code == 302 and answer["Location"] == "/"
    oscar = User.objects.get(username="oscar")
    assert ProjectMembership.objects.get(user=oscar).role == "approver" and oscar.is_staff
    assert oscar.has_perm("workflows.view_release")  # approvers' admin access: they sign off there
    assert client.get("/admin/workflows/release/").status_code == 200


@pytest.mark.django_db
def test_a_wrong_state_is_refused(oidc_signin, mapping):
    client = Client()
    callback = provider_login(start(client), "olivia")
    state = callback_query(callback)["state"]
    answer = client.get(callback.replace(f"state={state}", "state=forged"), follow=True)
    assert answer.status_code == 200 and "Signing in with Test IdP did not succeed" in answer.content.decode()
    assert not answer.wsgi_request.user.is_authenticated and not User.objects.filter(username="olivia").exists()


@pytest.mark.django_db
def test_a_wrong_nonce_is_refused(oidc_signin, mapping):
    client = Client()
    callback = provider_login(start(client), "olivia")
    remembered(client, callback, nonce="another-sign-in")  # the ID token names the real one
    answer = client.get(callback, follow=True)
    assert "Signing in with Test IdP did not succeed" in answer.content.decode()
    assert not User.objects.filter(username="olivia").exists()


@pytest.mark.django_db
def test_a_code_without_its_pkce_verifier_is_refused_by_the_provider(oidc_signin, mapping):
    client = Client()
    callback = provider_login(start(client), "olivia")
    remembered(client, callback, code_verifier="x" * 64)  # not the one the challenge was made of
    assert "did not succeed" in client.get(callback, follow=True).content.decode()
    assert not User.objects.filter(username="olivia").exists()


@pytest.mark.django_db
def test_a_provider_account_never_takes_over_a_local_one(oidc_signin, mapping):
    # given: a local "olivia", and a local admin holding the provider account's e-mail address
    local = UserFactory(username="olivia")
    admin = UserFactory(username="olive", email="olivia@slipway.test", is_superuser=True)
    # when / then: the provider's olivia is refused, and is never signed in as either
    client = Client()
    answer = client.get(provider_login(start(client), "olivia"), follow=True)
    assert "did not succeed" in answer.content.decode() and not answer.wsgi_request.user.is_authenticated
    assert not DirectoryAccount.objects.filter(user__in=[local, admin]).exists()
    assert not ProjectMembership.objects.filter(user__in=[local, admin]).exists()


def id_token_for(provider, client_id: str, client_secret: str) -> str:
    """An ID token the provider issues to ``client_id`` (for olivia, nonce "n"), by the code flow with PKCE."""
    document = requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=10).json()
    verifier = "v" * 64
    redirect_uri = "http://testserver/oidc/callback/"
    authorize = document["authorization_endpoint"] + "?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": "openid",
        "state": "s", "nonce": "n", "code_challenge": generate_code_challenge(verifier, "S256"),
        "code_challenge_method": "S256"})
    code = callback_query(provider_login(authorize, "olivia"))["code"]
    answer = requests.post(document["token_endpoint"], timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": client_id,
        "client_secret": client_secret, "code_verifier": verifier})
    assert answer.status_code == 200, answer.text
    return answer.json()["id_token"]


@pytest.mark.django_db
def test_an_id_token_issued_to_another_client_is_refused(oidc_signin):
    backend = DirectoryOIDCBackend()
    assert backend.verify_token(id_token_for(oidc_signin, CLIENT_ID, CLIENT_SECRET), nonce="n")["sub"] == "olivia"
    with pytest.raises(SuspiciousOperation, match="for another client"):
        backend.verify_token(id_token_for(oidc_signin, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET), nonce="n")


@pytest.mark.django_db
def test_a_discovery_document_of_another_issuer_is_refused(oidc_signin, settings):
    from tests.workflows.oidc_fixture import oidc_settings_apply

    oidc_settings_apply(settings, oidc_signin.env(SLIPWAY_OIDC_ISSUER=oidc_signin.issuer.replace("127.0.0.1",
                                                                                                   "localhost")))
    answer = Client().get("/oidc/authenticate/", follow=True)
    assert "names another issuer" in answer.content.decode()


@pytest.mark.django_db
def test_the_login_page_shows_the_configured_methods(oidc_signin, settings):
    page = Client().get("/login/").content.decode()
    assert "Sign in with Test IdP" in page and 'name="password"' in page
    settings.SLIPWAY_LOCAL_LOGIN = False
    page = Client().get("/login/").content.decode()
    assert "Sign in with Test IdP" in page and 'name="password"' not in page
