"""Webhook deliveries go through the guarded client: never inward, never redirected, no socket detail."""
import socket

import pytest
from django.core.exceptions import ValidationError

from paas_site.errors import PermanentError, TransientError
from workflows.models import ProjectWebhook
from workflows.services.notifications import SIGNATURE_HEADER, webhook_deliver

pytestmark = pytest.mark.django_db
PAYLOAD = {"event": "succeeded", "release": {"id": 1}}


def hook(project, url: str) -> ProjectWebhook:
    return ProjectWebhook.objects.create(project=project, url=url, secret="hook-secret", events=["succeeded"])


def accepted(request):
    return 204, {}, b""


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_a_webhook_on_loopback_is_refused_before_a_connection(settings, project, http_peer, name):
    peer = http_peer(accepted)
    settings.SLIPWAY_OUTBOUND_ALLOW = []

    with pytest.raises(PermanentError, match="refused by the outbound policy"):
        webhook_deliver(webhook_id=hook(project, f"http://{name}:{peer.server.server_port}/hook").id, payload=PAYLOAD)
    assert peer.connections == 0


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/iam", "http://10.1.2.3/hook",
                                 "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/"])
def test_a_webhook_on_an_inward_address_is_refused(settings, project, url):
    settings.SLIPWAY_OUTBOUND_ALLOW = []

    with pytest.raises(PermanentError, match="refused by the outbound policy"):
        webhook_deliver(webhook_id=hook(project, url).id, payload=PAYLOAD)


def test_a_webhook_redirect_is_not_followed_and_the_signature_stays_home(project, http_peer):
    elsewhere = http_peer(accepted, host="127.0.0.2")  # an allowed address: the redirect itself is the problem
    start = http_peer(lambda request: (302, {"Location": f"{elsewhere.url}/collect"}, b""))

    with pytest.raises(PermanentError, match=r"HTTP 302 \(a redirect, not followed\)"):
        webhook_deliver(webhook_id=hook(project, f"{start.url}/hook").id, payload=PAYLOAD)
    assert SIGNATURE_HEADER in start.requests[0][2]
    assert elsewhere.connections == 0


def test_an_unreachable_webhook_is_retried_and_says_only_unreachable(project):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"

        with pytest.raises(TransientError) as caught:
            webhook_deliver(webhook_id=hook(project, url).id, payload=PAYLOAD)

    assert caught.value.message == f"webhook {url} unreachable"


def test_a_literal_inward_webhook_url_is_refused_when_saved(settings, project):
    settings.SLIPWAY_OUTBOUND_ALLOW = []
    webhook = ProjectWebhook(project=project, url="http://169.254.169.254/x", secret="s", events=["succeeded"])

    with pytest.raises(ValidationError, match="refused by the outbound policy"):
        webhook.full_clean()
