"""Failed sign-ins lock out, per account at an address and per address, at all three doors; admins unlock.

Rule (workflows.lockout): 10 failures lock the account at that address, 30 lock the address for every
account, 100 from anywhere lock the account everywhere. So 30 bad logins from one address lock the account
and the address there, while the real user signs in from elsewhere.
"""
import pytest
from axes.models import AccessAttempt
from django.test import Client

from tests.deployments.factories import UserFactory
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"  # the UserFactory's
ATTACKER, ELSEWHERE = "203.0.113.9", "198.51.100.7"


def console(client: Client, username: str, password: str, address: str):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def admin(client: Client, username: str, password: str, address: str):
    return client.post("/admin/login/", {"username": username, "password": password, "next": "/admin/"},
                       REMOTE_ADDR=address)


def token(client: Client, username: str, password: str, address: str):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password},
                       content_type="application/json", REMOTE_ADDR=address)


def signed_in(response, door) -> bool:
    if door is token:
        return response.status_code == 200 and "token" in response.json()
    return response.status_code == 302 and "login" not in response["Location"]


def locked(response, door) -> bool:
    if response.status_code != 429:
        return False
    if door is token:
        body = response.json()
        return body["code"] == "locked_out" and "Too many failed sign-ins" in body["message"]
    return b"Too many failed sign-ins" in response.content


@pytest.mark.parametrize("door", [console, admin, token], ids=["console", "admin", "api-token"])
def test_thirty_bad_logins_lock_the_account_and_the_address_but_not_the_user_elsewhere(door, developer):
    other = UserFactory(username="colleague", is_staff=True)
    developer.is_staff = True  # so the admin door would let them in
    developer.save()

    # given 30 wrong passwords for dev from one address
    for _ in range(30):
        response = door(Client(), "dev", "wrong", ATTACKER)
        assert response.status_code in (200, 400, 429), response.status_code

    # then dev is locked there, with a clear answer, even with the right password
    assert locked(door(Client(), "dev", PASSWORD, ATTACKER), door)
    # and so is the address, for another account
    assert locked(door(Client(), other.username, PASSWORD, ATTACKER), door)
    # while dev signs in from elsewhere
    assert signed_in(door(Client(), "dev", PASSWORD, ELSEWHERE), door)
    # and each lockout, as it began, is in the audit trail
    events = AuditEvent.objects.filter(action="signin.locked_out").order_by("id")
    assert [event.after["rules"] for event in events] == [["account at this address"], ["address"]]
    assert all(event.after["ip_address"] == ATTACKER and event.after["username"] == "dev" for event in events)
    assert all("wrong" not in str(event.after) + event.message for event in events)  # no password recorded


def test_failures_at_one_door_count_at_the_others(developer):
    for _ in range(10):
        console(Client(), "dev", "wrong", ATTACKER)

    response = token(Client(), "dev", PASSWORD, ATTACKER)

    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"
    assert int(response["Retry-After"]) > 0


def test_a_few_mistakes_do_not_lock(developer):
    for _ in range(9):
        console(Client(), "dev", "wrong", ATTACKER)

    assert signed_in(console(Client(), "dev", PASSWORD, ATTACKER), console)


def test_many_addresses_lock_the_account_everywhere(settings, developer):
    settings.SLIPWAY_LOGIN_ACCOUNT_FAILURE_LIMIT = 20
    for n in range(20):
        token(Client(), "dev", "wrong", f"192.0.2.{n + 1}")

    assert locked(token(Client(), "dev", PASSWORD, ELSEWHERE), token)
    assert AuditEvent.objects.filter(action="signin.locked_out", after__rules=["account"]).count() == 1


def test_an_admin_unlocks_in_the_admin_and_it_is_audited(developer, staff):
    for _ in range(10):
        console(Client(), "dev", "wrong", ATTACKER)
    assert locked(console(Client(), "dev", PASSWORD, ATTACKER), console)

    # when a platform admin finds the lockout in the admin and unlocks it
    ops = Client()
    ops.force_login(staff)
    listing = ops.get("/admin/axes/accessattempt/?q=dev")
    assert listing.status_code == 200 and ATTACKER.encode() in listing.content
    ids = list(AccessAttempt.objects.filter(username="dev").values_list("id", flat=True))
    response = ops.post("/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": ids})
    assert response.status_code == 302

    # then dev signs in from that address again, and the unlock is on record
    assert signed_in(console(Client(), "dev", PASSWORD, ATTACKER), console)
    event = AuditEvent.objects.get(action="signin.unlocked")
    assert event.actor == "user:ops" and event.before["username"] == "dev" and event.before["failures"] >= 10


def test_only_a_superuser_may_unlock(developer):
    console(Client(), "dev", "wrong", ATTACKER)
    approver = UserFactory(username="approver", is_staff=True)
    client = Client()
    client.force_login(approver)
    ids = list(AccessAttempt.objects.values_list("id", flat=True))

    client.post("/admin/axes/accessattempt/", {"action": "unlock", "_selected_action": ids})

    assert AccessAttempt.objects.count() == 1
    assert not AuditEvent.objects.filter(action="signin.unlocked").exists()
