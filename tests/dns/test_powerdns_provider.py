"""The PowerDNS adapter against a real pdns_server: what it writes answers real DNS queries."""
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from dns.providers import RRset, ZoneAccess
from dns.providers.powerdns import PowerDNSProvider
from paas_site.errors import PermanentError, TransientError

pytestmark = pytest.mark.integration

NAME = "api.shop.internal.test."


@pytest.fixture
def provider(pdns_zone):
    return PowerDNSProvider(ZoneAccess(name=pdns_zone.zone, api_url=pdns_zone.api_url, api_key=pdns_zone.api_key))


def test_replace_creates_and_then_replaces_a_record_set(provider, pdns_zone):
    provider.apply(replace=[RRset(NAME, "A", 60, ("10.0.0.10",))])
    assert pdns_zone.resolve(NAME, "A") == ["10.0.0.10"]

    provider.apply(replace=[RRset(NAME, "A", 60, ("10.0.0.11", "10.0.0.12"))])
    assert pdns_zone.resolve(NAME, "A") == ["10.0.0.11", "10.0.0.12"]
    assert provider.rrsets([NAME]) == {(NAME, "A"): RRset(NAME, "A", 60, ("10.0.0.11", "10.0.0.12"))}


def test_one_change_swaps_an_a_for_a_cname_and_writes_txt(provider, pdns_zone):
    provider.apply(replace=[RRset(NAME, "A", 60, ("10.0.0.10",))])
    marker = RRset(f"_slipway-owner.{NAME}", "TXT", 60, ('"heritage=slipway,application=shop/api,environment=prod"',))

    provider.apply(delete=[(NAME, "A")], replace=[RRset(NAME, "CNAME", 60, ("ingress.example.com.",)), marker])

    assert pdns_zone.resolve(NAME, "A") == []
    assert pdns_zone.resolve(NAME, "CNAME") == ["ingress.example.com."]
    assert pdns_zone.resolve(marker.name, "TXT") == list(marker.contents)
    assert provider.rrsets([NAME, marker.name, "absent.internal.test."]) == {
        (NAME, "CNAME"): RRset(NAME, "CNAME", 60, ("ingress.example.com.",)), marker.key: marker,
    }


def test_delete_removes_a_record_set_and_deleting_nothing_is_fine(provider, pdns_zone):
    provider.apply(replace=[RRset(NAME, "A", 60, ("10.0.0.10",))])

    provider.apply(delete=[(NAME, "A")])
    provider.apply(delete=[(NAME, "A")])

    assert pdns_zone.query(NAME, "A").rcode == "NXDOMAIN"
    assert (NAME, "A") not in provider.rrsets()


def test_reading_the_whole_zone_includes_records_made_elsewhere(provider, pdns_zone):
    pdns_zone.put("legacy.internal.test.", "A", "192.0.2.7")

    rrsets = provider.rrsets()

    assert rrsets[("legacy.internal.test.", "A")].contents == ("192.0.2.7",)
    assert ("internal.test.", "SOA") in rrsets


def test_a_wrong_api_key_is_a_permanent_error_that_names_it(pdns_zone):
    provider = PowerDNSProvider(ZoneAccess(name=pdns_zone.zone, api_url=pdns_zone.api_url, api_key="wrong"))

    with pytest.raises(PermanentError, match="rejected the API key \\(HTTP 401\\)") as error:
        provider.rrsets()
    assert "wrong" not in str(error.value)


def test_a_change_powerdns_refuses_is_a_permanent_error_with_its_reason(provider, pdns_zone):
    with pytest.raises(PermanentError, match="refused the change: .*Conflicts with pre-existing RRset"):
        provider.apply(replace=[RRset(NAME, "A", 60, ("10.0.0.10",)), RRset(NAME, "CNAME", 60, ("x.example.",))])

    with pytest.raises(PermanentError, match="refused the change: Record .*'not-an-ip': Parsing record content"):
        provider.apply(replace=[RRset(NAME, "A", 60, ("not-an-ip",))])

    with pytest.raises(PermanentError, match="refused the change: .*Name is out of zone"):
        provider.apply(replace=[RRset("api.other.test.", "A", 60, ("10.0.0.10",))])
    assert pdns_zone.resolve(NAME, "A") == []


def test_a_zone_missing_on_the_server_is_a_permanent_error_naming_it(pdns_zone):
    provider = PowerDNSProvider(ZoneAccess(name="missing.test.", api_url=pdns_zone.api_url, api_key=pdns_zone.api_key))

    with pytest.raises(PermanentError, match="DNS zone missing.test. does not exist on the PowerDNS server"):
        provider.rrsets()


def test_a_stopped_server_is_a_transient_error_and_works_again_once_started(provider, pdns_zone):
    pdns_zone.stop()
    try:
        with pytest.raises(TransientError, match=r"^DNS provider internal.test. unreachable$"):  # no socket detail
            provider.apply(replace=[RRset(NAME, "A", 60, ("10.0.0.10",))])
    finally:
        pdns_zone.start()

    provider.apply(replace=[RRset(NAME, "A", 60, ("10.0.0.10",))])
    assert pdns_zone.resolve(NAME, "A") == ["10.0.0.10"]


def test_an_api_url_that_is_not_http_is_refused_before_any_request():
    provider = PowerDNSProvider(ZoneAccess(name="internal.test.", api_url="file:///etc/passwd", api_key="k"))

    with pytest.raises(PermanentError, match="no usable PowerDNS API URL"):
        provider.rrsets()


def test_a_server_that_never_answers_is_a_transient_error():
    with socket.socket() as hung:  # accepts connections (the kernel's backlog), never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(1)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        provider = PowerDNSProvider(ZoneAccess(name="internal.test.", api_url=url, api_key="k"), timeout=0.3)

        with pytest.raises(TransientError, match=r"^DNS provider internal.test. unreachable$"):
            provider.rrsets()


def test_a_server_error_is_a_transient_error():
    class Overloaded(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"backend busy")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Overloaded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        provider = PowerDNSProvider(ZoneAccess(name="internal.test.", api_url=url, api_key="k"))
        with pytest.raises(TransientError, match="unavailable: HTTP 503 backend busy"):
            provider.rrsets()
    finally:
        server.shutdown()
        server.server_close()


# -- the outbound policy -------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirecting_api_never_sends_the_key_elsewhere(http_peer, status):
    elsewhere = http_peer(lambda request: (200, {"Content-Type": "application/json"}, b"{}"), host="127.0.0.2")
    front = http_peer(lambda request: (status, {"Location": f"{elsewhere.url}{request.path}"}, b""))
    provider = PowerDNSProvider(ZoneAccess(name="internal.test.", api_url=front.url, api_key="pdns-key"))

    with pytest.raises(PermanentError, match=rf"answered with a redirect \(HTTP {status}\), which is not followed"):
        provider.rrsets()
    with pytest.raises(PermanentError, match="not followed"):
        provider.apply(replace=[RRset(NAME, "A", 60, ("10.0.0.10",))])
    assert elsewhere.connections == 0
    assert [headers.get("X-API-Key") for _, _, headers in front.requests] == ["pdns-key", "pdns-key"]


def test_an_api_on_a_refused_address_gets_no_connection(settings, pdns_zone):
    settings.SLIPWAY_OUTBOUND_ALLOW = []  # the real pdns_server listens on loopback
    provider = PowerDNSProvider(ZoneAccess(name=pdns_zone.zone, api_url=pdns_zone.api_url, api_key=pdns_zone.api_key))

    with pytest.raises(PermanentError, match=r"DNS provider internal\.test\.: .*refused by the outbound policy"):
        provider.rrsets()
