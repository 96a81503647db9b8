"""Bounded inputs against a real web process: big bodies, deep JSON and big uploads are 4xx, and it stays small.

The server is a plain WSGI server running Slipway in a subprocess (DEBUG on and off), so its memory can
be read from ``/proc/<pid>/status``; the requests go over a socket, as an attacker's would.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from tests.paas_site.test_site import production_env
from tests.reliability.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
# the standard library's WSGI server: it reads nothing of a body the application did not (Werkzeug's and
# runserver's drain it into memory, which would measure them, not Slipway)
SERVE = """
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer, make_server
from paas_site.wsgi import application
class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
make_server("127.0.0.1", int(sys.argv[1]), application, server_class=Server).serve_forever()
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # the peak resident size: a spike counts even if freed again
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture(scope="module", params=["debug", "production"])
def web(request):
    """A Slipway web process on a free port (these requests never reach the database); yields (port, pid)."""
    port = free_port()
    where = {"DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "paas_site.settings"}
    if request.param == "debug":
        env = {**os.environ, **where, "DEBUG": "true"}
    else:
        env = production_env(**where, ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="false")
    process = subprocess.Popen([sys.executable, "-c", SERVE, str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the web process did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    yield port, process.pid
    process.terminate()
    process.wait(timeout=10)


def exchange(port: int, path: str, body_length: int, content_type: str, chunk: bytes = b"[" * 65536,
             body: bytes | None = None) -> tuple[int, bytes]:
    """POST ``body`` (or ``body_length`` bytes of ``chunk``) while reading the answer; returns (status, body)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=30)
    length = len(body) if body is not None else body_length
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\nAccept: application/json\r\n\r\n").encode()

    def send():
        try:
            conn.sendall(head)
            if body is not None:
                conn.sendall(body)
                return
            left = body_length
            while left > 0:
                conn.sendall(chunk[:left])
                left -= len(chunk)
        except OSError:
            pass  # the server answered and closed without reading the rest: that is the point

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    answer = b""
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            answer += data
    except ConnectionResetError:
        pass
    conn.close()
    sender.join(timeout=60)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line, "no answer at all"
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_a_50_mb_json_body_is_413_before_it_is_read(web):
    port, pid = web
    exchange(port, "/api/v1/auth/token/", 1000, "application/json")  # warm up: imports, first request
    before = rss_kib(pid)

    status, body = exchange(port, "/api/v1/auth/token/", 50 * MB, "application/json")

    assert status == 413
    answer = json.loads(body)
    assert answer["code"] == "request_too_large" and "limit" in answer["message"]
    assert rss_kib(pid) - before < 10 * 1024, "the web process grew by more than 10 MiB"


def test_a_50_mb_form_body_is_413_too(web):
    port, pid = web
    exchange(port, "/login/", 1000, "application/x-www-form-urlencoded", chunk=b"a" * 65536)
    before = rss_kib(pid)

    status, body = exchange(port, "/login/", 50 * MB, "application/x-www-form-urlencoded", chunk=b"a" * 65536)

    assert status == 413
    assert b"limit" in body
    assert rss_kib(pid) - before < 10 * 1024


def test_json_nested_1000_levels_deep_is_a_400_naming_the_depth(web):
    port, _ = web
    deep = b"[" * 1000 + b"]" * 1000
    for text in (deep, b'{"username": ' + b"{\"a\": " * 1000 + b"1" + b"}" * 1000 + b"}"):
        status, body = exchange(port, "/api/v1/auth/token/", 0, "application/json", body=text)

        assert status == 400, body[:300]
        assert "nested deeper than" in json.loads(body)["message"]


def test_nesting_within_the_limit_still_parses(api, staff):
    labels = {"a": 1}
    for _ in range(settings.SLIPWAY_JSON_MAX_DEPTH - 2):
        labels = {"a": labels}
    response = api.as_user(staff).post("/api/v1/clusters/", {"name": "c1", "labels": labels}, format="json")

    assert response.status_code == 400  # labels must be strings: parsed and judged, not refused for depth
    assert "nested deeper" not in response.json()["message"]


def test_an_upload_past_the_package_limit_is_not_stored_and_is_refused_by_its_size(api, developer, settings,
                                                                                  tmp_path):
    # given a package limit of 1 MiB
    settings.SLIPWAY_PACKAGE_MAX_BYTES = 1 * MB
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = tmp_path
    spooled = []
    original = TemporaryFileUploadHandler.receive_data_chunk

    def spool(handler, raw_data, start):
        spooled.append(len(raw_data))
        return original(handler, raw_data, start)

    # when a 2 MiB file is uploaded (watching what reaches the temporary file)
    upload = SimpleUploadedFile("app.tar.gz", b"\0" * (2 * MB), content_type="application/gzip")
    with mock.patch.object(TemporaryFileUploadHandler, "receive_data_chunk", spool):
        response = api.as_user(developer).post("/api/v1/packages/", {"project": "shop", "file": upload},
                                               format="multipart")

    # then the answer names the file and the limit, at most the limit was spooled, and nothing was stored
    assert response.status_code == 400, response.content[:300]
    assert response.json()["message"] == f"file: is {2 * MB} bytes; the limit is {MB} bytes."
    assert 0 < sum(spooled) <= MB
    assert not (tmp_path / "media").exists()
