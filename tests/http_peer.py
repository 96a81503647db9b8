"""A tiny HTTP server on loopback whose answers a test decides: the ``http_peer`` fixture.

``http_peer(answer)`` starts one; ``answer(request) -> (status, headers, body)``
where ``request`` is the ``BaseHTTPRequestHandler``; a body given as an iterator
of chunks is sent without a Content-Length (the connection's end ends it). Each
request is recorded in ``peer.requests`` as ``(method, path, headers)``.
"""
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Peer:
    def __init__(self, answer: Callable):
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._reply(send_body=True)

            def do_HEAD(self):
                self._reply(send_body=False)

            def _reply(self, *, send_body):
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_port}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_peer():
    peers = []

    def start(answer: Callable) -> Peer:
        peers.append(Peer(answer))
        return peers[-1]

    yield start
    for peer in peers:
        peer.close()
