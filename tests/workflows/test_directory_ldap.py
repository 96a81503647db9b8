"""LDAP sign-in against a real slapd (TLS required by the server): roles from groups at every sign-in, disabled
accounts refused and their tokens stopped, no takeover of local accounts, lockout, local login off."""
from datetime import timedelta

import ldap
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone
from django_auth_ldap.config import LDAPSearch

from deployments.models import ProjectMembership
from paas_site.signin_config import authentication_backends, ldap_settings
from tests.deployments.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.registry_fixture import _free_port
from tests.workflows.slapd_fixture import PASSWORD, directory_settings
from workflows.choices import MappingGrant
from workflows.models import ApiToken, AuditEvent, DirectoryAccount, GroupRoleMapping

pytestmark = pytest.mark.django_db
User = get_user_model()
LOCAL_PASSWORD = "correct horse battery staple"  # the UserFactory's


@pytest.fixture
def mapping(project):
    for group, role in (("developers", "developer"), ("approvers", "approver"), ("maintainers", "maintainer")):
        GroupRoleMapping.objects.create(group=group, grant=MappingGrant.PROJECT_ROLE, project=project, role=role)
    GroupRoleMapping.objects.create(group="Finance-Team", grant=MappingGrant.FINANCE)  # names compare without case
    GroupRoleMapping.objects.create(group="platform-admins", grant=MappingGrant.PLATFORM_ADMIN, source="ldap")
    GroupRoleMapping.objects.create(group="approvers", grant=MappingGrant.ADMIN_ACCESS, source="oidc")  # not LDAP's


def sign_in(username: str, password: str = PASSWORD, client: Client | None = None):
    client = client or Client()
    return client, client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR="192.0.2.10")


def signed_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/"


def token_due_for_recheck(username: str) -> tuple[Client, dict, object]:
    """A directory user's API token, their last check a day ago: the next request asks the directory again."""
    api = Client()
    issued = api.post("/api/v1/auth/token/", {"username": username, "password": PASSWORD},
                      content_type="application/json")
    header = {"HTTP_AUTHORIZATION": f"Token {issued.json()['token']}"}
    user = User.objects.get(username=username)
    DirectoryAccount.objects.filter(user=user).update(checked_at=timezone.now() - timedelta(days=1))
    return api, header, user


def test_sign_in_lands_with_the_roles_the_groups_map_to(ldap_signin, mapping, project):
    # when
    _, alice_answer = sign_in("alice")
    _, bob_answer = sign_in("bob")
    _, frank_answer = sign_in("frank")
    # then
    assert signed_in(alice_answer) and signed_in(bob_answer) and signed_in(frank_answer)
    alice, bob, frank = (User.objects.get(username=name) for name in ("alice", "bob", "frank"))
    assert alice.email == "alice@slipway.test" and not alice.has_usable_password()
    assert [(m.project.slug, m.role, m.via_mapping) for m in ProjectMembership.objects.filter(user=alice)] == [
        ("shop", "developer", True)]
    assert ProjectMembership.objects.get(user=bob).role == "approver"
    assert bob.groups.filter(name="finance").exists() and not bob.is_staff  # the admin-access row is OIDC's only
    assert frank.is_superuser and frank.is_staff and not ProjectMembership.objects.filter(user=frank).exists()
    assert DirectoryAccount.objects.get(user=alice).subject == "uid=alice,ou=people,dc=slipway,dc=test"
    signin = AuditEvent.objects.get(action="signin.succeeded", target_id=str(alice.pk))
    assert signin.after == {"method": "ldap", "groups": ["developers"]}
    granted = AuditEvent.objects.filter(action="role.granted", actor="system:directory")
    assert {(e.target_id, e.project_id, *sorted(set(e.after) - {"groups"})) for e in granted} == {
        (str(alice.pk), project.id, "role in shop"), (str(bob.pk), project.id, "role in shop"),
        (str(bob.pk), None, "finance"), (str(frank.pk), None, "admin access"), (str(frank.pk), None, "platform admin")}


def test_a_removed_group_takes_its_role_away_at_the_next_sign_in_and_only_what_it_gave(ldap_signin, mapping):
    # given: dave is a developer and a maintainer in the directory, and a developer of ops by hand
    assert signed_in(sign_in("dave")[1])
    dave = User.objects.get(username="dave")
    assert ProjectMembership.objects.get(user=dave, project__slug="shop").role == "maintainer"
    by_hand = MembershipFactory(project=ProjectFactory(slug="ops"), user=dave, role="developer")
    # when
    ldap_signin.group_remove("maintainers", "dave")
    assert signed_in(sign_in("dave")[1])
    # then
    shop = ProjectMembership.objects.get(user=dave, project__slug="shop")
    assert shop.role == "developer" and shop.via_mapping
    by_hand.refresh_from_db()
    assert by_hand.role == "developer" and not by_hand.via_mapping
    change = AuditEvent.objects.filter(action="role.granted", target_id=str(dave.pk)).latest("id")
    assert change.before == {"role in shop": "maintainer"} and change.after["role in shop"] == "developer"
    # and when the last mapped group goes, so does the membership — the hand-given one stays
    ldap_signin.group_remove("developers", "dave")
    assert signed_in(sign_in("dave")[1])
    assert list(ProjectMembership.objects.filter(user=dave).values_list("project__slug", flat=True)) == ["ops"]
    assert AuditEvent.objects.filter(action="role.revoked", target_id=str(dave.pk)).count() == 1


def test_a_disabled_directory_account_cannot_sign_in(ldap_signin, mapping):
    _, answer = sign_in("carol")
    assert answer.status_code == 200 and "Please enter a correct username and password" in answer.content.decode()
    assert not User.objects.filter(username="carol").exists()


def test_tokens_and_sessions_of_a_disabled_account_stop_within_the_recheck_interval(ldap_signin, mapping, settings):
    # given: erin has an API token and a console session
    settings.SLIPWAY_DIRECTORY_RECHECK_SECONDS = 60
    api = Client()
    issued = api.post("/api/v1/auth/token/", {"username": "erin", "password": PASSWORD, "name": "laptop"},
                      content_type="application/json")
    assert issued.status_code == 200, issued.content
    header = {"HTTP_AUTHORIZATION": f"Token {issued.json()['token']}"}
    console, answer = sign_in("erin")
    assert signed_in(answer)
    erin = User.objects.get(username="erin")
    assert AuditEvent.objects.filter(action="signin.succeeded", target_id=str(erin.pk)).count() == 2
    # when: the directory disables her
    ldap_signin.disable("erin")
    # then: within the interval nothing is asked; once it has passed, the directory is asked and says no
    assert api.get("/api/v1/auth/tokens/", **header).status_code == 200
    DirectoryAccount.objects.filter(user=erin).update(checked_at=timezone.now() - timedelta(seconds=61))
    refused = api.get("/api/v1/auth/tokens/", **header)
    assert refused.status_code == 401
    erin.refresh_from_db()
    assert not erin.is_active and not ApiToken.objects.filter(user=erin).exists()
    assert console.get("/").status_code == 302  # the session ended as well
    event = AuditEvent.objects.get(action="signin.account_disabled", target_id=str(erin.pk))
    assert event.actor == "system:directory" and event.after["revoked_tokens"] == 1
    assert not signed_in(sign_in("erin")[1])


def test_an_account_the_directory_still_has_keeps_working_after_the_interval(ldap_signin, mapping, settings):
    assert signed_in(sign_in("bob")[1])
    bob = User.objects.get(username="bob")
    DirectoryAccount.objects.filter(user=bob).update(checked_at=timezone.now() - timedelta(days=1))
    client = Client()
    client.force_login(bob, backend="workflows.directory.ldap.DirectoryLDAPBackend")
    assert client.get("/").status_code == 200
    assert DirectoryAccount.objects.get(user=bob).checked_at > timezone.now() - timedelta(minutes=1)


def test_the_directory_is_spoken_to_over_tls_only(slapd, settings, mapping):
    # a plain-only configuration stops the start, naming the variable
    with pytest.raises(ImproperlyConfigured, match="SLIPWAY_LDAP_URI: ldap:// sends passwords in clear"):
        ldap_settings(slapd.env(ldaps=False, SLIPWAY_LDAP_START_TLS="false"))
    # and the server refuses anything without TLS: forced past the check, the sign-in fails ...
    directory_settings(settings, slapd.env(ldaps=False))
    settings.AUTH_LDAP_START_TLS = False
    assert not signed_in(sign_in("alice")[1])
    # ... while StartTLS on the same port works, and verifies the certificate against the CA
    settings.AUTH_LDAP_START_TLS = True
    assert signed_in(sign_in("alice")[1])
    settings.AUTH_LDAP_CONNECTION_OPTIONS = {**settings.AUTH_LDAP_CONNECTION_OPTIONS,
                                             ldap.OPT_X_TLS_CACERTFILE: "/etc/ssl/certs/ca-certificates.crt"}
    assert not signed_in(sign_in("alice")[1])


def test_a_directory_account_never_takes_over_a_local_account(ldap_signin, mapping):
    local = UserFactory(username="alice", is_superuser=True)
    assert not signed_in(sign_in("alice")[1])  # the directory's password for alice
    assert not DirectoryAccount.objects.filter(user=local).exists()
    assert signed_in(sign_in("alice", LOCAL_PASSWORD)[1])  # the local one still works


def test_failed_directory_sign_ins_count_towards_the_lockout(ldap_signin, mapping, settings):
    settings.SLIPWAY_LOGIN_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        assert not signed_in(sign_in("alice", "wrong")[1])
    _, answer = sign_in("alice")
    assert answer.status_code == 429
    assert not User.objects.filter(username="alice").exists()


def test_local_sign_in_can_be_turned_off(ldap_signin, mapping, settings):
    UserFactory(username="breakglass", is_superuser=True)
    settings.SLIPWAY_LOCAL_LOGIN = False
    settings.AUTHENTICATION_BACKENDS = authentication_backends(local=False, ldap=True, oidc=False)
    assert not signed_in(sign_in("breakglass", LOCAL_PASSWORD)[1])
    page = Client().get("/login/").content.decode()
    assert "Use your Slipway test directory." in page and "local Slipway account" not in page
    assert signed_in(sign_in("alice")[1])


def test_a_username_the_directory_gives_to_someone_else_does_not_inherit_the_account(ldap_signin, mapping):
    # given: "alice" was linked to a leaver's entry, and holds a hand-given role
    assert signed_in(sign_in("alice")[1])
    alice = User.objects.get(username="alice")
    DirectoryAccount.objects.filter(user=alice).update(subject="uid=alice,ou=leavers,dc=example,dc=com")
    MembershipFactory(user=alice, project=ProjectFactory(slug="secret"), role="maintainer")
    # then: the directory's new alice (another entry) cannot sign in as her
    assert not signed_in(sign_in("alice")[1])
    assert DirectoryAccount.objects.get(user=alice).subject == "uid=alice,ou=leavers,dc=example,dc=com"


def test_tokens_work_only_while_their_accounts_sign_in_method_is_on(ldap_signin, mapping, settings, maintainer):
    # given: a local account's token and a directory account's
    tokens = Client()
    local = tokens.post("/api/v1/auth/token/", {"username": maintainer.username, "password": LOCAL_PASSWORD},
                        content_type="application/json").json()["token"]
    directory = tokens.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD},
                            content_type="application/json").json()["token"]
    # when: local accounts are turned off
    settings.SLIPWAY_LOCAL_LOGIN = False
    settings.AUTHENTICATION_BACKENDS = authentication_backends(local=False, ldap=True, oidc=False)
    # then: the local account's token stops working, the directory account's goes on
    assert Client().get("/api/v1/auth/tokens/", HTTP_AUTHORIZATION=f"Token {local}").status_code == 401
    assert Client().get("/api/v1/auth/tokens/", HTTP_AUTHORIZATION=f"Token {directory}").status_code == 200
    # and when the directory is turned off instead, the other way round
    settings.SLIPWAY_LOCAL_LOGIN, settings.SLIPWAY_LDAP_ENABLED = True, False
    settings.AUTHENTICATION_BACKENDS = authentication_backends(local=True, ldap=False, oidc=False)
    assert Client().get("/api/v1/auth/tokens/", HTTP_AUTHORIZATION=f"Token {local}").status_code == 200
    assert Client().get("/api/v1/auth/tokens/", HTTP_AUTHORIZATION=f"Token {directory}").status_code == 401


def test_a_mapped_membership_changed_by_hand_is_left_alone_afterwards(ldap_signin, mapping, api, maintainer):
    assert signed_in(sign_in("alice")[1])
    membership = ProjectMembership.objects.get(user__username="alice")
    answer = api.as_user(maintainer).patch(f"/api/v1/memberships/{membership.id}/", {"role": "approver"},
                                           format="json")
    assert answer.status_code == 200 and answer.json()["via_mapping"] is False
    assert signed_in(sign_in("alice")[1])
    membership.refresh_from_db()
    assert membership.role == "approver" and not membership.via_mapping


def test_a_directory_that_cannot_be_reached_changes_nothing(ldap_signin, mapping, settings):
    api, header, alice = token_due_for_recheck("alice")
    settings.AUTH_LDAP_SERVER_URI = f"ldaps://127.0.0.1:{_free_port()}"  # nothing listens there
    assert api.get("/api/v1/auth/tokens/", **header).status_code == 200
    alice.refresh_from_db()
    assert alice.is_active and ApiToken.objects.filter(user=alice).exists()
    assert not AuditEvent.objects.filter(action="signin.account_disabled").exists()


@pytest.mark.parametrize("search", ["AUTH_LDAP_USER_SEARCH", "AUTH_LDAP_GROUP_SEARCH"])
def test_a_directory_search_that_fails_changes_nothing(ldap_signin, mapping, settings, search):
    # given: alice's token, due for a re-check
    api, header, alice = token_due_for_recheck("alice")
    # when: the directory answers the bind but fails the search (slapd: noSuchObject for a base that is gone)
    current = getattr(settings, search)
    setattr(settings, search, LDAPSearch(f"ou=gone,{current.base_dn}", current.scope, current.filterstr))
    # then: that is no answer about alice: she, her token and her roles stay
    assert api.get("/api/v1/auth/tokens/", **header).status_code == 200
    alice.refresh_from_db()
    assert alice.is_active and ApiToken.objects.filter(user=alice).exists() and alice.memberships.exists()
    assert not AuditEvent.objects.filter(action="signin.account_disabled").exists()


def test_a_mapped_platform_admin_signs_in_to_the_admin(ldap_signin, mapping):
    client = Client()
    answer = client.post("/admin/login/?next=/admin/", {"username": "frank", "password": PASSWORD, "next": "/admin/"})
    assert answer.status_code == 302 and answer["Location"] == "/admin/"
    assert client.get("/admin/workflows/grouprolemapping/").status_code == 200
    assert AuditEvent.objects.filter(action="signin.succeeded", after__method="ldap").count() == 1
