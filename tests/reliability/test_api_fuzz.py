"""Fuzz every API operation from the API's own OpenAPI schema, as each role.

Schemathesis generates valid and invalid requests for each operation; every role sends
each one. Nothing may answer 5xx, and no answer may carry a credential or (for anyone
but a platform admin and finance) another project's data.
``SLIPWAY_FUZZ_EXAMPLES`` raises the number of examples per operation for a longer hunt.
"""
import os
from datetime import timedelta

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings

from deployments.models import Environment
from dns.models import EnvironmentZone
from paas_site.wsgi import application
from tests.deployments.factories import ApplicationFactory, ClusterFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.dns.factories import ZoneFactory
from tests.workflows.factories import file_release
from workflows.models import ApiToken, CiToken, NotificationChannel, ProjectWebhook

EXAMPLES = int(os.environ.get("SLIPWAY_FUZZ_EXAMPLES", "8"))
RIVAL_MARKERS = ("rivalcorp", "zebra-ledger")  # the other project's slug and application
SECRETS = {
    "cluster token": "fuzz-cluster-token-7f3a",
    "DNS API key": "fuzz-dns-key-91bc",
    "webhook secret": "fuzz-webhook-secret-55de",
    "chat robot URL token": "fuzz-robot-token-3b9a",
    "chat signing secret": "fuzz-robot-secret-c41e",
    "CI token shop": "fuzz-ci-token-0c2e",
    f"CI token {RIVAL_MARKERS[0]}": "fuzz-ci-token-7d1f",
}


schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def keep_test_transaction():
    """Requests go through the real WSGI app, which closes the database connection at each
    request's end; that would end the test's transaction (Django's test client does the same)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(db, keep_test_transaction):
    """A small world (two projects, credentials everywhere) and an API token per role."""
    shop, rival = ProjectFactory(slug="shop"), ProjectFactory(slug=RIVAL_MARKERS[0])
    # nothing listens on port 9: calls to the cluster and the DNS server fail at once, as errors the API must map
    cluster = ClusterFactory(name="fuzz", api_server="https://127.0.0.1:9", token=SECRETS["cluster token"])
    prod = Environment.objects.create(name="prod", cluster=cluster, required_approvals=1)
    EnvironmentZone.objects.create(
        environment=prod, zone=ZoneFactory(name="fuzz.example.", provider="powerdns", api_key=SECRETS["DNS API key"],
                                           api_url="http://127.0.0.1:9/api/v1"),
    )
    roles = {
        "developer": MembershipFactory(project=shop, role="developer", user=UserFactory(username="f-dev")).user,
        "approver": MembershipFactory(project=shop, role="approver", user=UserFactory(username="f-appr")).user,
        "maintainer": MembershipFactory(project=shop, role="maintainer", user=UserFactory(username="f-lead")).user,
        "finance": UserFactory(username="f-money", finance=True),
        "outsider": UserFactory(username="f-out"),
        "admin": UserFactory(username="f-ops", is_staff=True, is_superuser=True),
    }
    for project, name in ((shop, "web"), (rival, RIVAL_MARKERS[1])):
        app = ApplicationFactory(project=project, name=name, image=f"registry.example.com/{project.slug}/{name}")
        ProjectWebhook.objects.create(project=project, url="http://127.0.0.1:9/hook", secret=SECRETS["webhook secret"])
        NotificationChannel.objects.create(
            project=project, name="robot", kind="dingtalk", secret=SECRETS["chat signing secret"], events=["failed"],
            url=f"http://127.0.0.1:9/robot/send?access_token={SECRETS['chat robot URL token']}")
        ci_token = SECRETS[f"CI token {project.slug}"]
        CiToken.objects.create(project=project, name="ci", token_hash=CiToken.hash_of(ci_token), prefix="fuzz-ci",
                               owner=roles["admin"], expires_at=timezone.now() + timedelta(days=1))
        file_release(actor=roles["admin"], application=app, environment=prod)
    return {role: ApiToken.objects.create(user=user, name="fuzz")[1] for role, user in roles.items()}


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_role_gets_a_server_error_or_a_leak(case, tokens):
    for role, token in tokens.items():
        response = case.call(headers={"Authorization": f"Token {token}"})
        where = f"{case.method} {case.formatted_path} as {role}"

        assert response.status_code < 500, f"{where} → {response.status_code}: {response.text[:500]}"
        for what, secret in SECRETS.items():
            assert secret not in response.text, f"{where} returned the {what}"
        if role not in ("admin", "finance"):
            for marker in RIVAL_MARKERS:
                assert marker not in response.text, f"{where} showed another project's data ({marker})"
