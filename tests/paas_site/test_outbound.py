"""The guarded outbound client: the address policy, and real connections to loopback listeners.

Loopback is what the tests may reach (``SLIPWAY_OUTBOUND_ALLOW`` in tests/conftest.py); each test here
narrows that setting and proves with a listener that not even a TCP connection arrived.
"""
import socket

import pytest
import requests

from paas_site import outbound
from paas_site.outbound import GuardedSession, OutboundRefused, address_allowed, url_check

REFUSED = [
    "127.0.0.1", "127.1.2.3", "::1", "169.254.169.254", "169.254.0.1", "fe80::1", "fe80::1%1",
    "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fc00::1", "fd00:ec2::254",
    "100.64.0.1", "100.100.100.200", "0.0.0.0", "0.1.2.3", "::", "224.0.0.1", "239.255.255.250", "ff02::1",
    "255.255.255.255", "192.0.0.192",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::ffff:0.0.0.0",  # IPv4-mapped
    "::127.0.0.1", "2002:7f00:1::1", "2002:a9fe:a9fe::1", "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.fixture
def nothing_allowed(settings):
    settings.SLIPWAY_OUTBOUND_ALLOW = []
    return settings


@pytest.mark.parametrize("address", REFUSED)
def test_inward_addresses_are_refused_by_default(nothing_allowed, address):
    assert not address_allowed(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(nothing_allowed, address):
    assert address_allowed(address)


def test_an_admin_allowed_cidr_opens_only_that_range_in_every_spelling(settings):
    settings.SLIPWAY_OUTBOUND_ALLOW = ["10.20.0.0/16"]

    assert address_allowed("10.20.3.4") and address_allowed("::ffff:10.20.3.4")
    assert not address_allowed("10.21.0.1") and not address_allowed("127.0.0.1")


def test_a_literal_inward_url_is_refused_before_any_lookup(nothing_allowed):
    assert "refused by the outbound policy" in url_check("http://169.254.169.254/latest/meta-data")
    assert "refused by the outbound policy" in url_check("http://[::ffff:127.0.0.1]:8080/")
    assert url_check("https://hooks.example.com/x") == ""
    assert "http://" in url_check("gopher://example.com/")


def test_a_bad_cidr_in_the_setting_stops_the_start(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], capture_output=True, text=True,
        env={"DJANGO_SETTINGS_MODULE": "paas_site.settings", "DEBUG": "1", "SECRET_KEY": "x",
             "SLIPWAY_VAR_DIR": str(tmp_path), "SLIPWAY_OUTBOUND_ALLOW": "10.0.0.0/33", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0 and "SLIPWAY_OUTBOUND_ALLOW: '10.0.0.0/33' is not a CIDR" in result.stderr


# -- real connections ------------------------------------------------------------------
def ok(request):
    return 200, {}, b"ok"


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_loopback_by_address_or_by_name_is_refused_before_a_connection(nothing_allowed, http_peer, name):
    peer = http_peer(ok)
    port = peer.server.server_port

    with pytest.raises(OutboundRefused, match="refused by the outbound policy"):
        GuardedSession().get(f"http://{name}:{port}/")
    assert peer.connections == 0


def test_loopback_is_reached_when_the_setting_allows_it(http_peer):
    peer = http_peer(ok)

    assert GuardedSession().get(f"http://localhost:{peer.server.server_port}/").text == "ok"
    assert peer.connections == 1


def test_a_redirect_to_another_host_is_refused_and_the_target_sees_nothing(settings, http_peer):
    settings.SLIPWAY_OUTBOUND_ALLOW = ["127.0.0.0/8"]  # both addresses allowed: the redirect itself is refused
    target = http_peer(ok, host="127.0.0.2")
    start = http_peer(lambda request: (302, {"Location": f"{target.url}/steal"}, b""))

    with pytest.raises(OutboundRefused, match="redirected to another host"):
        GuardedSession().get(f"{start.url}/", headers={"Authorization": "Bearer secret"})
    assert target.connections == 0


def test_a_redirect_on_the_same_origin_is_followed(http_peer):
    peer = http_peer(lambda request: (200, {}, b"landed") if request.path == "/b" else (302, {"Location": "/b"}, b""))

    assert GuardedSession().get(f"{peer.url}/a").text == "landed"


def test_a_caller_that_does_not_follow_gets_the_redirect_without_a_check(settings, http_peer):
    peer = http_peer(lambda request: (302, {"Location": "http://169.254.169.254/"}, b""))

    assert GuardedSession().get(peer.url, allow_redirects=False).status_code == 302


def test_the_address_checked_is_the_address_connected_to(settings, http_peer, monkeypatch):
    """DNS rebinding: a name answering an allowed address at check time and loopback afterwards.

    The resolver is the one thing faked here (no DNS server of ours is the system's resolver); the guard
    must resolve once and connect to the very address it checked.
    """
    settings.SLIPWAY_OUTBOUND_ALLOW = ["127.0.0.2/32"]
    allowed = http_peer(ok, host="127.0.0.2")
    port = allowed.server.server_port
    inward = socket.socket()
    inward.bind(("127.0.0.1", port))  # the same port on the refused address: a second lookup would land here
    inward.listen()
    inward.settimeout(0.2)
    real_getaddrinfo, answers = socket.getaddrinfo, iter(["127.0.0.2"])

    def rebinding(host, *args, **kwargs):
        if host == "rebind.test":
            return real_getaddrinfo(next(answers, "127.0.0.1"), *args, **kwargs)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        assert GuardedSession().get(f"http://rebind.test:{port}/").text == "ok"
        with pytest.raises(OutboundRefused):  # the next lookup says 127.0.0.1: refused, not connected
            GuardedSession().get(f"http://rebind.test:{port}/")
        with pytest.raises(TimeoutError):
            inward.accept()
    finally:
        inward.close()
    assert allowed.connections == 1


def test_proxies_from_the_environment_are_not_used(http_peer, monkeypatch):
    proxy = http_peer(ok)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("http_proxy", proxy.url)
    target = http_peer(lambda request: (200, {}, b"direct"))

    assert GuardedSession().get(target.url).text == "direct"
    assert proxy.connections == 0


def test_other_schemes_are_refused():
    with pytest.raises((OutboundRefused, requests.exceptions.InvalidSchema)):
        GuardedSession().get("file:///etc/passwd")


def test_an_unreachable_target_is_named_without_the_socket_detail(closed_port):
    with pytest.raises(requests.RequestException) as caught:
        GuardedSession().get(f"http://127.0.0.1:{closed_port}/")

    error = outbound.unreachable("webhook x", caught.value)
    assert error.message == "webhook x unreachable"


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
