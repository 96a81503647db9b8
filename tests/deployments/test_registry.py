"""``resolve_digest`` against a real ``docker-registry``, and against tiny loopback HTTP peers for the faults
and the bearer-token flow (docker-registry's token auth needs an auth server we don't run)."""
import json
import socket
import threading
import urllib.parse

import pytest

from deployments.registry import resolve_digest
from paas_site.errors import PermanentError, TransientError
from tests.registry_fixture import OCI_MANIFEST, RegistryServer

pytestmark = pytest.mark.integration

DIGEST = "sha256:" + "ab" * 32
TOKEN = "t0ken"


# -- against docker-registry ---------------------------------------------------------
def test_a_pushed_tag_resolves_to_the_digest_of_its_manifest(registry):
    digest = registry.push_image("shop/api", "1.0")

    assert resolve_digest(f"{registry.host}/shop/api:1.0") == digest


def test_a_tag_pushed_again_resolves_to_its_new_manifest(registry):
    # given
    first = registry.push_image("shop/web", "stable")
    assert resolve_digest(f"{registry.host}/shop/web:stable") == first
    # when
    second = registry.push_image("shop/web", "stable", layers=2)
    # then
    assert second != first
    assert resolve_digest(f"{registry.host}/shop/web:stable") == second


def test_a_reference_without_a_tag_resolves_latest(registry):
    digest = registry.push_image("shop/worker", "latest")

    assert resolve_digest(f"{registry.host}/shop/worker") == digest


def test_an_unknown_tag_is_a_permanent_error_naming_the_image(registry):
    registry.push_image("shop/db", "1.0")

    with pytest.raises(PermanentError, match=rf"image {registry.host}/shop/db:9\.9 not found"):
        resolve_digest(f"{registry.host}/shop/db:9.9")


def test_an_unknown_repository_is_a_permanent_error(registry):
    with pytest.raises(PermanentError, match=rf"image {registry.host}/nobody/nothing:1\.0 not found"):
        resolve_digest(f"{registry.host}/nobody/nothing:1.0")


def test_a_stopped_registry_is_a_transient_error(tmp_path):
    # given
    server = RegistryServer(tmp_path)
    server.start()
    try:
        server.push_image("shop/api", "1.0")
    finally:
        # when
        server.stop()
    # then
    with pytest.raises(TransientError, match=rf"registry {server.host} unreachable"):
        resolve_digest(f"{server.host}/shop/api:1.0")


# -- without a registry --------------------------------------------------------------
@pytest.fixture
def closed_port():
    """A loopback port that is bound but not listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_an_unreachable_registry_is_a_transient_error(closed_port):
    with pytest.raises(TransientError, match=rf"registry 127\.0\.0\.1:{closed_port} unreachable"):
        resolve_digest(f"127.0.0.1:{closed_port}/app:1")


def test_a_digest_reference_is_its_own_digest_without_asking_the_registry(http_peer):
    peer = http_peer(lambda request: (503, {}, b""))

    assert resolve_digest(f"{peer.host}/app:1@{DIGEST}") == DIGEST
    assert peer.requests == []


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_registry_in_trouble_is_a_transient_error(http_peer, status):
    peer = http_peer(lambda request: (status, {}, b""))

    with pytest.raises(TransientError, match=rf"registry {peer.host} unavailable: HTTP {status}"):
        resolve_digest(f"{peer.host}/shop/api:1.0")


def test_a_registry_answer_without_a_digest_is_a_permanent_error(http_peer):
    peer = http_peer(lambda request: (200, {"Content-Type": OCI_MANIFEST}, b""))

    with pytest.raises(PermanentError, match=rf"registry {peer.host} gave no digest for {peer.host}/shop/api:1\.0"):
        resolve_digest(f"{peer.host}/shop/api:1.0")


def test_a_peer_that_does_not_speak_http_is_a_transient_error():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        host = f"127.0.0.1:{listener.getsockname()[1]}"

        def babble():
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"-ERR unknown command\r\n")

        thread = threading.Thread(target=babble, daemon=True)
        thread.start()
        with pytest.raises(TransientError, match=rf"registry {host} "):
            resolve_digest(f"{host}/shop/api:1.0")
        thread.join(timeout=5)


# -- the bearer-token challenge -------------------------------------------------------
def token_protected(token_answer, *, realm_path="/token"):
    """A registry that wants a bearer token from its own ``/token`` endpoint, which answers ``token_answer``."""

    def answer(request):
        if request.path.startswith("/token"):
            return token_answer
        if request.headers.get("Authorization") == f"Bearer {TOKEN}":
            return 200, {"Docker-Content-Digest": DIGEST, "Content-Type": OCI_MANIFEST}, b""
        realm = f"http://{request.headers['Host']}{realm_path}"
        challenge = f'Bearer realm="{realm}",service="stub-registry",scope="repository:shop/api:pull"'
        return 401, {"WWW-Authenticate": challenge}, b""

    return answer


def token_json(body):
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


@pytest.mark.parametrize("field", ["token", "access_token"])
def test_a_bearer_challenge_is_answered_with_an_anonymous_token(http_peer, field):
    # given
    peer = http_peer(token_protected(token_json({field: TOKEN})))
    # when
    digest = resolve_digest(f"{peer.host}/shop/api:1.0")
    # then
    assert digest == DIGEST
    (token_request,) = [path for _, path, _ in peer.requests if path.startswith("/token")]
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(token_request).query) == {
        "service": ["stub-registry"], "scope": ["repository:shop/api:pull"],
    }
    method, path, headers = peer.requests[-1]
    assert (method, path, headers["Authorization"]) == ("HEAD", "/v2/shop/api/manifests/1.0", f"Bearer {TOKEN}")


def test_a_token_realm_with_its_own_query_keeps_it(http_peer):
    peer = http_peer(token_protected(token_json({"token": TOKEN}), realm_path="/token?account=anonymous"))

    assert resolve_digest(f"{peer.host}/shop/api:1.0") == DIGEST
    (token_request,) = [path for _, path, _ in peer.requests if path.startswith("/token")]
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(token_request).query) == {
        "account": ["anonymous"], "service": ["stub-registry"], "scope": ["repository:shop/api:pull"],
    }


def test_a_token_endpoint_that_refuses_is_a_permanent_error(http_peer):
    peer = http_peer(token_protected((401, {}, b"")))

    with pytest.raises(PermanentError, match=rf"registry {peer.host} rejected credentials"):
        resolve_digest(f"{peer.host}/shop/api:1.0")


def test_a_token_endpoint_in_trouble_is_a_transient_error(http_peer):
    peer = http_peer(token_protected((503, {}, b"")))

    with pytest.raises(TransientError, match=rf"registry {peer.host} token endpoint unavailable: HTTP 503"):
        resolve_digest(f"{peer.host}/shop/api:1.0")


@pytest.mark.parametrize("body", [{}, {"token": ""}, ["t0ken"]], ids=["no-token", "empty-token", "not-an-object"])
def test_a_token_endpoint_without_a_token_is_a_permanent_error(http_peer, body):
    peer = http_peer(token_protected(token_json(body)))

    with pytest.raises(PermanentError, match=rf"registry {peer.host} token endpoint gave no token"):
        resolve_digest(f"{peer.host}/shop/api:1.0")
    assert len(peer.requests) == 2  # asked once for the manifest, once for a token: no loop


def test_a_registry_that_refuses_its_own_token_is_a_permanent_error(http_peer):
    peer = http_peer(token_protected(token_json({"token": "stale"})))

    with pytest.raises(PermanentError, match=rf"registry {peer.host} rejected credentials for {peer.host}/shop/api:1\.0"):
        resolve_digest(f"{peer.host}/shop/api:1.0")
    assert len(peer.requests) == 3  # challenge, token, one retry
