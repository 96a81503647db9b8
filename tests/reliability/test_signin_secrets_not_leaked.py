"""Company sign-in never logs, audits or answers a secret: the directory's service-account password, a user's
directory password, the OpenID client secret, a PKCE verifier or an API token — on success and on failure
(wrong password, a directory that cannot be reached, a provider refusing the code), every logger at DEBUG."""
import json

import pytest
from django.test import Client

from tests.workflows.oidc_fixture import CLIENT_SECRET, callback_query, provider_login
from tests.workflows.slapd_fixture import PASSWORD, READER_PASSWORD
from workflows.models import AuditEvent

from .test_secrets_not_leaked import debug_logs  # noqa: F401  (the fixture: every logger at DEBUG)

pytestmark = pytest.mark.django_db


def test_sign_in_secrets_never_appear_in_logs_audit_or_answers(ldap_signin, oidc_signin, settings, debug_logs,  # noqa: F811
                                                               capfd):
    answers: list[str] = []
    client = Client()
    # LDAP: a good and a wrong password, a token, then a directory that cannot be reached
    for password in (PASSWORD, "wrong-" + PASSWORD):
        answers.append(client.post("/login/", {"username": "alice", "password": password}, follow=True)
                       .content.decode())
    issued = client.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD},
                         content_type="application/json")
    token = issued.json()["token"]
    answers.append(issued.content.decode().replace(token, ""))  # the one answer that shows it
    settings.AUTH_LDAP_SERVER_URI = "ldaps://127.0.0.1:1"
    answers.append(Client().post("/login/", {"username": "bob", "password": PASSWORD}).content.decode())
    # OpenID Connect: a sign-in, and one whose verifier the provider refuses
    verifiers = []
    for tamper in (False, True):
        browser = Client()
        callback = provider_login(browser.get("/oidc/authenticate/")["Location"], "olivia")
        session = browser.session
        state = session["oidc_states"][callback_query(callback)["state"]]
        if tamper:
            state["code_verifier"] = "t" * 64
            session.save()
        verifiers.append(state["code_verifier"])
        answers.append(browser.get(callback, follow=True).content.decode())
    # then
    secrets = {"service account password": READER_PASSWORD, "directory password": PASSWORD,
               "client secret": CLIENT_SECRET, "API token": token, **{f"verifier {n}": v for n, v in enumerate(verifiers)}}
    out, err = capfd.readouterr()
    audit = json.dumps([[e.before, e.after, e.message] for e in AuditEvent.objects.all()])
    places = {"logs": "\n".join(debug_logs.lines), "stdout/stderr": out + err, "audit": audit,
              "answers": "\n".join(answers)}
    leaked = [f"{name} in {where}" for name, value in secrets.items() for where, text in places.items()
              if value in text]
    assert AuditEvent.objects.filter(action="signin.succeeded", after__method="oidc").exists()
    assert not leaked, leaked
