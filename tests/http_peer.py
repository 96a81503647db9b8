"""A tiny HTTP server on loopback whose answers a test decides: the ``http_peer`` fixture.

``http_peer(answer)`` starts one; ``answer(request) -> (status, headers, body)``
where ``request`` is the ``BaseHTTPRequestHandler``; a body given as an iterator
of chunks is sent without a Content-Length (the connection's end ends it). Each
request is recorded in ``peer.requests`` as ``(method, path, headers)``, and
every accepted TCP connection counts in ``peer.connections`` (so a test can prove
that not even a connection arrived). ``http_peer(answer, host="127.0.0.2")``
listens on another loopback address.
"""
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Peer:
    def __init__(self, answer: Callable, host: str = "127.0.0.1"):
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.connections = 0
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._reply(send_body=True)

            def do_HEAD(self):
                self._reply(send_body=False)

            def do_POST(self):
                self._reply(send_body=True)

            do_PUT = do_PATCH = do_POST

            def _reply(self, *, send_body):
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                peer.requests.append((self.command, self.path, dict(self.headers)))
                status, headers, body = answer(self)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if isinstance(body, bytes):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body:
                    for chunk in [body] if isinstance(body, bytes) else body:
                        self.wfile.write(chunk)

            def log_message(self, format, *args):
                pass

        class Server(ThreadingHTTPServer):
            def get_request(self):
                accepted = super().get_request()
                peer.connections += 1
                return accepted

        self.server = Server((host, 0), Handler)
        self.host = f"{host}:{self.server.server_port}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_peer():
    peers = []

    def start(answer: Callable, host: str = "127.0.0.1") -> Peer:
        peers.append(Peer(answer, host))
        return peers[-1]

    yield start
    for peer in peers:
        peer.close()
