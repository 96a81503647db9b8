"""A real PowerDNS Authoritative Server (Debian's ``pdns-server`` 4.7, sqlite3 backend) for the test session.

``.ci/test`` installs the packages; the ``pdns`` fixture runs ``pdns_server`` on
free loopback ports with its own config and database, creates the zone
``internal.test.`` through the HTTP API, and answers real DNS queries:
``pdns.resolve(name, "A")``.

Queries go over UDP with the standard library (:func:`dns_query`). dnspython
cannot be imported here: its top-level package is called ``dns``, like the
Django app, which shadows it on ``sys.path``. A query and an A/CNAME/TXT answer
are a few lines of RFC 1035, so that is simpler than juggling ``sys.modules``
or depending on ``dig``.
"""
import json
import random
import secrets
import shutil
import socket
import sqlite3
import struct
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")
ZONE = "internal.test."
STARTUP_TIMEOUT = 10
CONFIG = """\
launch=gsqlite3
gsqlite3-database={database}
local-address=127.0.0.1
local-port={dns_port}
api=yes
api-key={api_key}
webserver=yes
webserver-address=127.0.0.1
webserver-port={api_port}
webserver-allow-from=127.0.0.1/32
socket-dir={workdir}
daemon=no
guardian=no
disable-syslog=yes
security-poll-suffix=
cache-ttl=0
negquery-cache-ttl=0
query-cache-ttl=0
loglevel=4
"""


def _free_port() -> int:
    """A loopback port free for both TCP (the API, DNS over TCP) and UDP (DNS)."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


class PowerDNSServer:
    """``pdns_server`` on 127.0.0.1: DNS on ``dns_port``, the HTTP API at ``api_url`` with ``api_key``."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.zone = ZONE
        self.api_key = secrets.token_urlsafe(24)
        self.dns_port = _free_port()
        self.api_port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.log_path = workdir / "pdns.log"
        self.process: subprocess.Popen | None = None
        binary = shutil.which("pdns_server") or shutil.which("pdns_server", path="/usr/sbin:/usr/local/sbin")
        if binary is None or not SCHEMA.exists():
            pytest.fail("pdns_server (pdns-server, pdns-backend-sqlite3) is not installed: run the tests through "
                        ".ci/test, which installs it (apt-get install pdns-server pdns-backend-sqlite3)")
        self.binary = binary
        database = workdir / "pdns.sqlite3"
        connection = sqlite3.connect(database)
        try:
            connection.executescript(SCHEMA.read_text())
        finally:
            connection.close()
        (workdir / "pdns.conf").write_text(CONFIG.format(
            database=database, dns_port=self.dns_port, api_key=self.api_key, api_port=self.api_port, workdir=workdir
        ))

    # -- process ---------------------------------------------------------------------
    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, f"--config-dir={self.workdir}"], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                self.api("GET", "/api/v1/servers/localhost")
                if self.query(self.zone, "SOA").rcode in ("NOERROR", "REFUSED"):
                    return
            except (OSError, AssertionError):
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"pdns_server did not answer on {self.api_url} within {STARTUP_TIMEOUT} s; its log:\n{self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else "(no log)"

    # -- the HTTP API, for set-up and for changing things behind Slipway's back -----------------
    def api(self, method: str, path: str, body: dict | None = None) -> dict | None:
        request = urllib.request.Request(
            f"{self.api_url}{path}", method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"X-API-Key": self.api_key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"PowerDNS refused {method} {path}: HTTP {exc.code} {exc.read().decode()}") from None
        return json.loads(payload) if payload else None

    def create_zone(self, name: str) -> None:
        self.api("POST", "/api/v1/servers/localhost/zones", {"name": name, "kind": "Native", "nameservers": []})

    def rrsets(self) -> dict[tuple[str, str], list[str]]:
        """(name, type) → contents, straight from the API."""
        zone = self.api("GET", f"/api/v1/servers/localhost/zones/{self.zone}")
        return {
            (rrset["name"], rrset["type"]): sorted(record["content"] for record in rrset["records"])
            for rrset in zone["rrsets"]
        }

    def put(self, name: str, type_: str, *contents: str, ttl: int = 60) -> None:
        self._patch([{"name": name, "type": type_, "ttl": ttl, "changetype": "REPLACE",
                      "records": [{"content": content, "disabled": False} for content in contents]}])

    def delete(self, name: str, type_: str) -> None:
        self._patch([{"name": name, "type": type_, "changetype": "DELETE"}])

    def reset(self) -> None:
        """Remove every record set but the zone's SOA, so each test starts from an empty zone."""
        doomed = [{"name": name, "type": type_, "changetype": "DELETE"}
                  for name, type_ in self.rrsets() if (name, type_) != (self.zone, "SOA")]
        if doomed:
            self._patch(doomed)

    def _patch(self, rrsets: list[dict]) -> None:
        self.api("PATCH", f"/api/v1/servers/localhost/zones/{self.zone}", {"rrsets": rrsets})

    # -- real DNS queries ---------------------------------------------------------------------
    def query(self, name: str, type_: str) -> "DnsAnswer":
        return dns_query(name, type_, port=self.dns_port)

    def resolve(self, name: str, type_: str) -> list[str]:
        """The answers of ``type_`` a real query for ``name`` gets (empty for NXDOMAIN or no data)."""
        return self.query(name, type_).answers


# -- a minimal DNS client (RFC 1035): one question over UDP; A, CNAME and TXT answers ---------------
QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "TXT": 16}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


@dataclass(frozen=True)
class DnsAnswer:
    rcode: str
    answers: list[str]


def dns_query(name: str, type_: str, *, port: int, server: str = "127.0.0.1", timeout: float = 2.0) -> DnsAnswer:
    query_id = random.randrange(1 << 16)
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", query_id, 0, 1, 0, 0, 0) + question + struct.pack("!HH", QTYPES[type_], 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (server, port))
        while True:
            data = sock.recv(65535)
            if struct.unpack("!H", data[:2])[0] == query_id:
                break
    _, flags, questions, answers, _, _ = struct.unpack("!HHHHHH", data[:12])
    assert not flags & 0x0200, "the answer was truncated; this client does not retry over TCP"
    offset = 12
    for _ in range(questions):
        _, offset = _read_name(data, offset)
        offset += 4
    found = []
    for _ in range(answers):
        _, offset = _read_name(data, offset)
        rtype, _, _, length = struct.unpack("!HHIH", data[offset:offset + 10])
        offset += 10
        if rtype == QTYPES[type_]:
            found.append(_rdata(data, offset, length, rtype))
        offset += length
    return DnsAnswer(rcode=RCODES.get(flags & 0x000F, str(flags & 0x000F)), answers=sorted(found))


def _rdata(data: bytes, offset: int, length: int, rtype: int) -> str:
    if rtype == QTYPES["A"]:
        return socket.inet_ntoa(data[offset:offset + 4])
    if rtype == QTYPES["TXT"]:
        strings, end = [], offset + length
        while offset < end:
            size = data[offset]
            strings.append('"' + data[offset + 1:offset + 1 + size].decode() + '"')
            offset += 1 + size
        return " ".join(strings)
    return _read_name(data, offset)[0]  # CNAME, NS: a (possibly compressed) name


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    """A name at ``offset`` (following compression pointers) and the offset after it."""
    labels, resume = [], None
    for _ in range(128):
        length = data[offset]
        if length & 0xC0 == 0xC0:
            resume = offset + 2 if resume is None else resume
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            continue
        offset += 1
        if length == 0:
            return ".".join(labels) + ".", resume if resume is not None else offset
        labels.append(data[offset:offset + length].decode("ascii"))
        offset += length
    raise AssertionError("a DNS name with a compression loop")


@pytest.fixture(scope="session")
def pdns(tmp_path_factory):
    """A running ``pdns_server`` with the zone ``internal.test.``: ``.api_url``, ``.api_key``, ``.dns_port``,
    ``.zone``, ``.resolve(name, type)``, ``.stop()``/``.start()``."""
    server = PowerDNSServer(tmp_path_factory.mktemp("pdns"))
    server.start()
    try:
        server.create_zone(server.zone)
        yield server
    finally:
        server.stop()
