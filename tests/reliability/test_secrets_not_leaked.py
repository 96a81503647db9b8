"""No secret is ever logged, audited, answered or put in an error message, on the happy path or the error paths.

Every logger is turned up to DEBUG (the worker's too: it runs in this process)
and everything written to stdout/stderr is captured, while a full flow runs
with real secrets: a user's password and API token, a cluster bearer token, a
PowerDNS API key, a webhook signing secret and a CI token. Then the same flow
meets the failures that tend to echo credentials: a wrong password, a wrong CI
token, PowerDNS and the cluster refusing the key (401), a webhook refusing a
delivery.
"""
import json
import logging
import secrets
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from deployments.models import Environment
from deployments.sandbox import SandboxCluster
from dns.models import EnvironmentZone, Record
from tests.conftest import wait_until_idle
from tests.deployments.factories import ApplicationFactory, MembershipFactory, UserFactory
from workflows.choices import FINAL
from workflows.models import AuditEvent, CiToken, ProjectWebhook, Release, StepRun

from .conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # with the traceback, if any


@pytest.fixture
def debug_logs():
    """Every logger at DEBUG, into one list."""
    handler = Capture()
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


class Hooks(BaseHTTPRequestHandler):
    """``/ok`` takes the notification; ``/refuse`` answers 400 (a permanent delivery failure)."""

    received: list[bytes] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204 if self.path == "/ok" else 400)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server():
    Hooks.received = []
    server = HTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_secrets_never_appear_in_logs_audit_answers_or_errors(project, pdns, worker, webhook_server, debug_logs, capfd,
                                                              settings):
    settings.SLIPWAY_VERIFY_POLL_SECONDS = 0.05
    settings.SLIPWAY_STEP_MAX_RETRIES = 1
    secret = {name: f"{name}-{secrets.token_urlsafe(16)}" for name in (
        "password", "wrong-password", "cluster-token", "wrong-cluster-token", "pdns-key-wrong", "webhook-secret",
        "ci-token", "wrong-ci-token")}
    secret["pdns-key"] = pdns.api_key
    pdns.reset()
    answers: list[str] = []

    def call(client: APIClient, method: str, path: str, body: dict | None = None, *, keep: bool = True):
        response = getattr(client, method)(path, body, format="json")
        if keep:
            answers.append(response.content.decode())
        return response

    with SandboxCluster(port=0, rollout_delay=0.1, token=secret["cluster-token"]) as sandbox:
        # given a platform set up through the API with real credentials
        admin = APIClient()
        admin.force_authenticate(UserFactory(username="ops", is_staff=True, is_superuser=True))
        assert call(admin, "post", "/api/v1/clusters/", {
            "name": "sandbox", "api_server": sandbox.url, "auth_method": "token", "token": secret["cluster-token"],
            "ingress_address": "127.0.0.10"}).status_code == 201
        zone = call(admin, "post", "/api/v1/dns/zones/", {
            "name": pdns.zone, "provider": "powerdns", "api_url": pdns.api_url, "api_key": secret["pdns-key"]})
        assert zone.status_code == 201, zone.json()
        dev = Environment.objects.create(name="dev", cluster_id=call(admin, "get", "/api/v1/clusters/sandbox/")
                                         .json()["id"], required_approvals=0, rollout_deadline_seconds=5)
        EnvironmentZone.objects.create(environment=dev, zone_id=zone.json()["id"])
        app = ApplicationFactory(project=project, name="api", replicas=1, exposed=True,
                                 image="registry.example.com/shop/api")
        for path in ("ok", "refuse"):
            ProjectWebhook.objects.create(project=project, url=f"{webhook_server}/{path}", secret=secret["webhook-secret"],
                                          events=["succeeded", "failed", "rolled_back"])
        user = MembershipFactory(project=project, role="developer", user=UserFactory(username="dev")).user
        CiToken.objects.create(project=project, name="ci", token_hash=CiToken.hash_of(secret["ci-token"]),
                               prefix=secret["ci-token"][:4], owner=user, expires_at=timezone.now() + timedelta(days=1))
        user.set_password(secret["password"])
        user.save()

        # when a developer logs in with a password and releases with the token it gets, and CI releases too
        anonymous = APIClient()
        assert call(anonymous, "post", "/api/v1/auth/token/",
                    {"username": "dev", "password": secret["wrong-password"]}).status_code == 400
        login = call(anonymous, "post", "/api/v1/auth/token/", {"username": "dev", "password": secret["password"]},
                     keep=False)  # the one answer that must carry a secret: the token asked for
        secret["api-token"] = login.json()["token"]
        developer = APIClient()
        developer.credentials(HTTP_AUTHORIZATION=f"Token {secret['api-token']}")
        image = "registry.example.com/shop/api:{}@sha256:" + "c" * 64
        first = call(developer, "post", "/api/v1/releases/", {
            "application": app.id, "environment": "dev", "version": "1.0", "image": image.format("1.0")})
        assert first.status_code == 201, first.json()
        ci = APIClient()
        ci.credentials(HTTP_AUTHORIZATION=f"Bearer {secret['wrong-ci-token']}")
        assert call(ci, "post", "/api/v1/hooks/ci/shop/", {"application": "api", "environment": "dev"}).status_code == 401
        ci.credentials(HTTP_AUTHORIZATION=f"Bearer {secret['ci-token']}")
        second = call(ci, "post", "/api/v1/hooks/ci/shop/", {
            "application": "api", "environment": "dev", "version": "1.1", "image": image.format("1.1")})
        assert second.status_code == 201, second.json()
        assert wait_until(lambda: Release.objects.filter(state="succeeded").count() == 2, 60), \
            list(Release.objects.values_list("state", "failure_reason"))

        # and then PowerDNS, and after it the cluster, refuse the credentials they are given
        refused_key = call(admin, "patch", f"/api/v1/dns/zones/{pdns.zone}/", {"api_key": secret["pdns-key-wrong"]})
        assert refused_key.status_code == 200, refused_key.json()
        dns_refused = call(developer, "post", "/api/v1/releases/", {
            "application": app.id, "environment": "dev", "version": "1.2", "image": image.format("1.2")}).json()
        assert wait_until(lambda: Release.objects.get(id=dns_refused["id"]).state in FINAL, 60)
        call(admin, "patch", f"/api/v1/dns/zones/{pdns.zone}/", {"api_key": secret["pdns-key"]})
        call(admin, "patch", "/api/v1/clusters/sandbox/", {"token": secret["wrong-cluster-token"]})
        cluster_refused = call(developer, "post", "/api/v1/releases/", {
            "application": app.id, "environment": "dev", "version": "1.3", "image": image.format("1.3")}).json()
        assert wait_until(lambda: Release.objects.get(id=cluster_refused["id"]).state in FINAL, 60)
        for release in Release.objects.all():
            answers.append(call(developer, "get", f"/api/v1/releases/{release.id}/").content.decode())
            answers.append(call(developer, "get", f"/api/v1/releases/{release.id}/steps/").content.decode())
        answers.append(call(admin, "get", "/api/v1/audit/").content.decode())
        answers.append(call(admin, "get", "/api/v1/clusters/").content.decode())
        answers.append(call(admin, "get", "/api/v1/dns/zones/").content.decode())
        answers.append(call(admin, "get", "/api/v1/dns/records/").content.decode())
        wait_until_idle(worker)

    # then the failures were real and said so
    reasons = dict(Release.objects.values_list("version", "failure_reason"))
    assert "PowerDNS" in reasons["1.2"] and "401" in reasons["1.2"], reasons
    assert "refused Slipway's credentials" in reasons["1.3"], reasons
    assert any(b'"event": "failed"' in body for body in Hooks.received)  # delivered to both hooks, one refused
    assert any("not delivered" in line for line in debug_logs.lines)
    assert any(line.startswith("DEBUG") for line in debug_logs.lines)
    # and no secret is anywhere: logs, output, answers, the audit trail, step logs and errors, DNS errors, webhooks
    out, err = capfd.readouterr()
    stored = [json.dumps(list(model.objects.values()), default=str) for model in (AuditEvent, StepRun, Release, Record)]
    haystack = "\n".join([*debug_logs.lines, out, err, *answers, *stored,
                          *(body.decode() for body in Hooks.received)])
    leaked = [name for name, value in secret.items() if value in haystack]
    assert not leaked, leaked
