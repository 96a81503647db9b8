"""API tokens: hashed at rest, named, expiring, listed and revoked by their owner (API and console), shown once."""
import hashlib

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.deployments.factories import UserFactory
from workflows.models import ApiToken, AuditEvent

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def sign_in(**extra) -> dict:
    response = APIClient().post("/api/v1/auth/token/", {"username": "dev", "password": PASSWORD, **extra},
                                format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def with_token(value: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {value}")
    return client


def database_text() -> str:
    """Every row of the tables a token could end up in, as text."""
    with connection.cursor() as cursor:
        rows = []
        for table in ("workflows_apitoken", "workflows_auditevent", "django_session", "axes_accesslog"):
            cursor.execute(f"SELECT * FROM {table}")
            rows += cursor.fetchall()
    return repr(rows)


def test_a_token_is_unreadable_in_the_database(developer):
    issued = sign_in(name="laptop")

    assert issued["name"] == "laptop" and issued["expiry"]
    stored = ApiToken.objects.get(id=issued["id"])
    assert stored.digest == hashlib.sha512(issued["token"].encode()).hexdigest()
    assert issued["token"] not in database_text()
    assert with_token(issued["token"]).get("/api/v1/projects/").status_code == 200


def test_a_revoked_token_stops_working(developer):
    issued = sign_in()
    client = with_token(issued["token"])

    assert client.delete(f"/api/v1/auth/tokens/{issued['id']}/").status_code == 204

    response = client.get("/api/v1/projects/")
    assert response.status_code == 401 and response.json()["code"] == "authentication_failed"
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert event.actor == "user:dev" and issued["token"] not in event.message + str(event.before)


def test_an_expired_token_stops_working(developer):
    issued = sign_in(expires_in=60)
    client = with_token(issued["token"])
    assert client.get("/api/v1/projects/").status_code == 200

    ApiToken.objects.filter(id=issued["id"]).update(expiry=timezone.now() - timezone.timedelta(seconds=1))

    assert client.get("/api/v1/projects/").status_code == 401


def test_every_token_expires_by_default_and_never_past_the_maximum(developer, settings):
    settings.SLIPWAY_API_TOKEN_SECONDS = 3600
    settings.SLIPWAY_API_TOKEN_MAX_SECONDS = 7200
    token = ApiToken.objects.get(id=sign_in()["id"])
    assert 3500 < (token.expiry - timezone.now()).total_seconds() <= 3600

    response = APIClient().post("/api/v1/auth/token/", {"username": "dev", "password": PASSWORD,
                                                        "expires_in": 7201}, format="json")

    assert response.status_code == 400
    assert response.json()["message"] == "expires_in: must be between 60 and 7200 seconds."
    assert ApiToken.objects.count() == 1


def test_owners_list_their_tokens_without_the_value_and_cannot_touch_others(developer):
    mine = sign_in(name="ci-laptop")
    theirs, _ = ApiToken.objects.create(user=UserFactory(username="other"), name="theirs")
    client = with_token(mine["token"])

    listing = client.get("/api/v1/auth/tokens/")

    assert listing.status_code == 200
    assert [(row["name"], row["current"]) for row in listing.json()["results"]] == [("ci-laptop", True)]
    assert mine["token"] not in listing.content.decode() and mine["token"][:15] not in listing.content.decode()
    assert client.delete(f"/api/v1/auth/tokens/{theirs.id}/").status_code == 404
    assert ApiToken.objects.filter(id=theirs.id).exists()


def test_a_token_cannot_mint_tokens_but_a_session_can(developer):
    client = with_token(sign_in()["token"])
    refused = client.post("/api/v1/auth/tokens/", {"name": "more"}, format="json")
    assert refused.status_code == 403 and "password" in refused.json()["message"]

    session = APIClient()
    session.force_login(developer)
    made = session.post("/api/v1/auth/tokens/", {"name": "script", "expires_in": 600}, format="json")
    assert made.status_code == 201 and made.json()["token"]
    assert with_token(made.json()["token"]).get("/api/v1/projects/").status_code == 200


def test_the_console_page_shows_a_new_token_once_and_revokes_it(developer):
    browser = Client()
    browser.force_login(developer)

    created = browser.post("/tokens/", {"name": "deploy script", "expires_in_days": "7"})

    assert created.status_code == 200
    token = ApiToken.objects.get(name="deploy script")
    value = created.context["issued"]
    assert value and value.encode() in created.content and created["Cache-Control"] == "no-store"
    assert 6 * 86400 < (token.expiry - timezone.now()).total_seconds() <= 7 * 86400
    listing = browser.get("/tokens/")
    assert b"deploy script" in listing.content and value.encode() not in listing.content
    assert with_token(value).get("/api/v1/projects/").status_code == 200

    browser.post(f"/tokens/{token.id}/revoke/")

    assert with_token(value).get("/api/v1/projects/").status_code == 401
    assert b"revoked" in browser.get("/tokens/").content


def test_the_console_refuses_a_lifetime_past_the_maximum(developer, settings):
    settings.SLIPWAY_API_TOKEN_MAX_SECONDS = 30 * 86400
    browser = Client()
    browser.force_login(developer)

    response = browser.post("/tokens/", {"name": "long", "expires_in_days": "31"})

    assert response.status_code == 400 and b"30" in response.content
    assert not ApiToken.objects.exists()


def test_a_password_change_ends_every_session_and_token(developer):
    token = with_token(sign_in()["token"])
    browser = Client()
    browser.post("/login/", {"username": "dev", "password": PASSWORD})
    assert browser.get("/").status_code == 200

    developer.set_password("a new passphrase that is long")
    developer.save()

    assert token.get("/api/v1/projects/").status_code == 401
    assert browser.get("/")["Location"].startswith("/login/")
    assert AuditEvent.objects.filter(action="api_token.revoked", message__contains="password changed").count() == 1


def test_signing_in_again_does_not_revoke_tokens(developer):
    token = with_token(sign_in()["token"])
    developer.last_login = timezone.now()
    developer.save()  # a save without a new password
    sign_in()

    assert token.get("/api/v1/projects/").status_code == 200


def test_the_admin_lists_tokens_without_their_value_or_key(developer, staff):
    issued = sign_in(name="laptop")
    ops = Client()
    ops.force_login(staff)

    listing = ops.get("/admin/workflows/apitoken/")
    page = ops.get(f"/admin/workflows/apitoken/{issued['id']}/change/")

    assert listing.status_code == 200 and b"laptop" in listing.content
    stored = ApiToken.objects.get(id=issued["id"])
    for answer in (listing, page):
        assert issued["token"][:15].encode() not in answer.content and stored.digest.encode() not in answer.content


def test_legacy_plaintext_tokens_are_hashed_and_erased(developer):
    migration = __import__("workflows.migrations.0012_api_tokens_from_authtoken", fromlist=["hash_legacy_tokens"])
    legacy = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer, created timestamptz)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, now())", [legacy, developer.id])

    with connection.schema_editor() as editor:
        migration.hash_legacy_tokens(apps, editor)

    assert with_token(legacy).get("/api/v1/projects/").status_code == 200
    assert ApiToken.objects.get().name == "migrated"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0
