"""Requests users aim: image references, registry answers, package URLs and smoke checks cannot be turned inward.

Each target is a real loopback listener; the outbound policy is narrowed (or a redirect leaves the allowed
origin), and the listener proves that not even a TCP connection arrived, nor any credential.
"""
import base64

import pytest

from deployments import services
from deployments.manifests import ReleaseConfig
from deployments.packages import package_download
from deployments.registry import RegistryClient, registry_access, resolve_digest
from paas_site.errors import PermanentError, TransientError
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, deploy_spec

USER, PASSWORD = "slipway", "s3cret-registry-password"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
DIGEST = "sha256:" + "e" * 64
IMAGE = "registry.example.com/shop/api:1.0@sha256:" + "a" * 64
INWARD = ["169.254.169.254", "10.0.0.7", "192.168.1.1", "[fd00:ec2::254]", "[::ffff:127.0.0.1]", "0.0.0.0"]


@pytest.fixture
def nothing_inward(settings):
    settings.SLIPWAY_OUTBOUND_ALLOW = []
    return settings


def ok(request):
    return 200, {}, b"ok"


def recorded_credentials(peer) -> list[str]:
    return [value for _, _, headers in peer.requests for name, value in headers.items()
            if name.lower() in ("authorization", "x-api-key")]


# -- image references ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_an_image_on_loopback_is_refused_before_a_connection(nothing_inward, http_peer, name):
    peer = http_peer(ok)

    with pytest.raises(PermanentError, match="refused by the outbound policy"):
        resolve_digest(f"{name}:{peer.server.server_port}/shop/api:1.0")
    assert peer.connections == 0


@pytest.mark.parametrize("address", [a for a in INWARD if not a.startswith("[")])  # no IPv6 in image refs
def test_an_image_on_an_inward_address_is_refused(nothing_inward, address):
    with pytest.raises(PermanentError, match="refused by the outbound policy"):
        resolve_digest(f"{address}:5000/shop/api:1.0")


@pytest.fixture
def configured_registry(settings, http_peer):
    """The build registry, with credentials; ``answers`` decides what it says once the client authenticated."""
    answers = {}

    def answer(request):
        if request.headers.get("Authorization") != BASIC:
            return 401, {"WWW-Authenticate": 'Basic realm="registry"'}, b""
        return answers["authenticated"](request)

    peer = http_peer(answer)
    settings.SLIPWAY_REGISTRY = peer.host
    settings.SLIPWAY_REGISTRY_USERNAME, settings.SLIPWAY_REGISTRY_PASSWORD = USER, PASSWORD
    peer.answers = answers
    return peer


def test_a_registry_redirect_to_another_host_never_receives_the_credentials(configured_registry, http_peer):
    # given a configured registry that, once authenticated, redirects to another (allowed) loopback host
    elsewhere = http_peer(lambda request: (200, {"Docker-Content-Digest": DIGEST}, b""), host="127.0.0.2")
    configured_registry.answers["authenticated"] = lambda request: (
        307, {"Location": f"{elsewhere.url}/v2/shop/api/manifests/1.0"}, b"")
    # when the digest is resolved
    with pytest.raises(PermanentError, match=rf"registry {configured_registry.host}: .*redirected to another host"):
        resolve_digest(f"{configured_registry.host}/shop/api:1.0")
    # then the other host saw nothing at all
    assert elsewhere.connections == 0 and recorded_credentials(elsewhere) == []


def test_a_token_realm_on_another_host_never_receives_the_credentials(settings, http_peer):
    realm = http_peer(lambda request: (200, {}, b'{"token": "t"}'), host="127.0.0.2")
    registry = http_peer(lambda request: (401, {"WWW-Authenticate": f'Bearer realm="{realm.url}/token",'
                                                                    'service="registry"'}, b""))
    settings.SLIPWAY_REGISTRY = registry.host
    settings.SLIPWAY_REGISTRY_USERNAME, settings.SLIPWAY_REGISTRY_PASSWORD = USER, PASSWORD

    with pytest.raises(PermanentError, match=r"token realm on host 127\.0\.0\.2:\d+, which is neither the "
                                             "registry's host nor in SLIPWAY_REGISTRY_TOKEN_HOSTS"):
        resolve_digest(f"{registry.host}/shop/api:1.0")
    assert realm.connections == 0


def test_a_token_realm_on_a_listed_host_gets_the_credentials(settings, http_peer):
    realm = http_peer(lambda request: (200, {}, b'{"token": "t"}'), host="127.0.0.2")
    registry = http_peer(lambda request: (
        (200, {"Docker-Content-Digest": DIGEST}, b"") if request.headers.get("Authorization") == "Bearer t"
        else (401, {"WWW-Authenticate": f'Bearer realm="{realm.url}/token"'}, b"")))
    settings.SLIPWAY_REGISTRY = registry.host
    settings.SLIPWAY_REGISTRY_USERNAME, settings.SLIPWAY_REGISTRY_PASSWORD = USER, PASSWORD
    settings.SLIPWAY_REGISTRY_TOKEN_HOSTS = ["127.0.0.2"]

    assert resolve_digest(f"{registry.host}/shop/api:1.0") == DIGEST
    assert recorded_credentials(realm) == [BASIC]


def test_an_upload_location_on_another_host_never_receives_the_credentials(configured_registry, http_peer):
    elsewhere = http_peer(lambda request: (201, {}, b""), host="127.0.0.2")
    configured_registry.answers["authenticated"] = lambda request: (
        202, {"Location": f"{elsewhere.url}/upload/1?_state=x"}, b"")
    client = RegistryClient(registry_access(configured_registry.host))

    with pytest.raises(PermanentError, match="gave an upload location on another host"):
        client.blob_upload("shop/api", DIGEST, b"layer", image="shop/api")
    assert elsewhere.connections == 0


def test_an_unreachable_registry_says_unreachable_and_nothing_about_the_socket(closed_port):
    with pytest.raises(TransientError) as caught:
        resolve_digest(f"127.0.0.1:{closed_port}/app:1")

    assert caught.value.message == f"registry 127.0.0.1:{closed_port} unreachable"


# -- package URLs ---------------------------------------------------------------------------------
def test_a_package_url_naming_loopback_is_refused_before_a_connection(nothing_inward, http_peer):
    peer = http_peer(ok)
    nothing_inward.SLIPWAY_PACKAGE_HOSTS = ["localhost"]  # allow-listed by name: the address still decides

    with pytest.raises(PermanentError, match="refused by the outbound policy"):
        with package_download(f"http://localhost:{peer.server.server_port}/app.war"):
            pass
    assert peer.connections == 0


def test_a_package_url_on_a_private_literal_address_is_refused_without_a_lookup(nothing_inward):
    nothing_inward.SLIPWAY_PACKAGE_HOSTS = ["10.0.0.7"]

    with pytest.raises(PermanentError, match="points at an address refused by the outbound policy"):
        with package_download("http://10.0.0.7/app.war"):
            pass


def test_a_package_redirect_to_loopback_is_refused_before_a_connection(settings, http_peer):
    settings.SLIPWAY_OUTBOUND_ALLOW = ["127.0.0.2/32"]
    inward = http_peer(ok)  # 127.0.0.1, not allowed
    start = http_peer(lambda request: (302, {"Location": f"http://localhost:{inward.server.server_port}/a.war"}, b""),
                      host="127.0.0.2")
    settings.SLIPWAY_PACKAGE_HOSTS = ["127.0.0.2", "localhost"]

    with pytest.raises(PermanentError, match="refused by the outbound policy"):
        with package_download(f"{start.url}/app.war"):
            pass
    assert inward.connections == 0


# -- smoke checks ---------------------------------------------------------------------------------
@pytest.fixture
def deployed(db, project, sandbox_cluster):
    env = EnvironmentFactory(name="dev", cluster=sandbox_cluster, rollout_deadline_seconds=5)
    app = ApplicationFactory(project=project, name="api", replicas=1, exposed=False)
    return app, env


def verify(deployed, url):
    """Deploy with ``url`` as the smoke check (verify reads it from the revision's spec), then verify."""
    app, env = deployed
    app.smoke_check_url = url
    app.save()  # save() runs no clean(): the URL reaches the spec as an attacker's stored one would
    revision = services.deployment_apply(application_id=app.id, environment_id=env.id, image=IMAGE, release="1",
                                         config=ReleaseConfig(env={}, files={}), spec=deploy_spec(app, env))
    services.deployment_verify(revision_id=revision.id, poll_interval=0.05)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_a_smoke_check_on_loopback_is_refused_before_a_connection(deployed, settings, http_peer, name):
    peer = http_peer(ok)
    settings.SLIPWAY_OUTBOUND_ALLOW = []  # after the sandbox apply: the cluster is not a user's target

    with pytest.raises(PermanentError, match="smoke check .* failed: .*refused by the outbound policy"):
        verify(deployed, f"http://{name}:{peer.server.server_port}/health")
    assert peer.connections == 0


@pytest.mark.django_db
@pytest.mark.parametrize("address", INWARD)
def test_a_smoke_check_on_an_inward_address_is_refused(deployed, settings, address):
    settings.SLIPWAY_OUTBOUND_ALLOW = []

    with pytest.raises(PermanentError, match="refused by the outbound policy"):
        verify(deployed, f"http://{address}/latest/meta-data")


@pytest.mark.django_db
def test_a_smoke_check_redirect_to_another_host_is_refused(deployed, http_peer):
    inward = http_peer(ok, host="127.0.0.2")
    start = http_peer(lambda request: (302, {"Location": f"{inward.url}/admin"}, b""))

    with pytest.raises(PermanentError, match="redirected to another host"):
        verify(deployed, f"{start.url}/health")
    assert inward.connections == 0


@pytest.mark.django_db
def test_an_unreachable_smoke_check_names_no_socket_detail(deployed, closed_port):
    with pytest.raises(PermanentError) as caught:
        verify(deployed, f"http://127.0.0.1:{closed_port}/health")

    assert caught.value.message == f"smoke check http://127.0.0.1:{closed_port}/health unreachable"


@pytest.fixture
def closed_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
