"""`SandboxCluster`: the sandbox's HTTP server and controller, started and stopped together."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

import yaml
from werkzeug.serving import BaseWSGIServer, make_server

from .app import SandboxApp
from .controller import DEFAULT_TIME_SCALE, ControllerManager, Timing
from .faults import FaultInjector
from .store import Store
from .tls import generate as generate_certificates
from .tls import kubeconfig as kubeconfig_for


class SandboxCluster:
    """A Kubernetes API emulator listening on `host:port` (0 picks a free port).

    The socket is bound in the constructor, so `url` is known (and connections
    are queued) before `start()`. Sandbox time (see `controller`):
    `rollout_delay` is how many seconds a simulated pod takes to run, and
    `time_scale` how many seconds each Kubernetes second in a spec lasts
    (`progressDeadlineSeconds`, `minReadySeconds`, the HPA's stabilisation
    window). With a `token`, Kubernetes API requests must send
    `Authorization: Bearer <token>`.

    With `tls` it serves HTTPS under a CA generated now (`ca_pem`; see `tls`),
    as kubectl needs for a token; the command-line entry points default to it,
    the class to plain HTTP. `history` is how many changes watches and old
    list pages can reach back (older: 410 Expired); a quiet watch that asked
    for bookmarks gets one every `bookmark_interval` seconds.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, rollout_delay: float = 0.2,
                 token: str | None = None, time_scale: float = DEFAULT_TIME_SCALE, *, tls: bool = False,
                 history: int = 1000, bookmark_interval: float = 5.0) -> None:
        self.store = Store(history=history)
        self.faults = FaultInjector()
        self.token = token
        self._controller = ControllerManager(self.store, Timing(rollout_delay, time_scale))
        self.app = SandboxApp(self.store, self.faults, token, bookmark_interval=bookmark_interval)
        self._server: BaseWSGIServer = make_server(host, port, self.app, threaded=True)
        self.ca_pem: str | None = None
        if tls:
            certificates = generate_certificates(host)
            self.ca_pem = certificates.ca_pem
            context = certificates.server_context()
            # The handshake happens in the request's thread, on first read: a client that connects
            # and stalls cannot hold up the accepting loop.
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True,
                                                      do_handshake_on_connect=False)
            self._server.ssl_context = context  # werkzeug: https URL scheme, handshake failures logged briefly
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{'https' if self.ca_pem else 'http'}://{host}:{port}"

    def kubeconfig(self, namespace: str = "default", token: str | None = None) -> dict:
        """A kubeconfig for this sandbox: its URL, CA and token (or `token` instead)."""
        return kubeconfig_for(self.url, self.ca_pem, token or self.token, namespace)

    def write_kubeconfig(self, path: str | os.PathLike) -> Path:
        """Write `kubeconfig()` to `path` (mode 0600: it holds the token)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            os.fchmod(out.fileno(), 0o600)  # O_CREAT's mode applies only to a new file
            yaml.safe_dump(self.kubeconfig(), out)
        return target

    def start(self) -> None:
        """Serve from a daemon thread; returns at once, the socket already listening."""
        self._controller.start()
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-http", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the management command's mode)."""
        self._controller.start()
        try:
            self._server.serve_forever()
        finally:
            self._shut_down()

    def stop(self) -> None:
        """Stop serving, end hanging requests and the controller, and close the socket."""
        if self._thread is not None:
            self._server.shutdown()  # blocks until serve_forever returns, so only when it runs
            self._thread.join()
            self._thread = None
        self._shut_down()

    def _shut_down(self) -> None:
        self.store.history.close()  # ends open watches
        self.faults.release()
        self._controller.stop()
        self._server.server_close()

    def inject_fault(self, mode: str, count: int = 1, hang_seconds: float = 5.0, method: str | None = None) -> None:
        """Fault the next `count` API requests (with `method`, if given): "503", "429", "hang" or "slow" (`faults`)."""
        self.faults.inject(mode, count, hang_seconds, method)

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset(self) -> None:
        """Drop every object (and pending fault), as `POST /sandbox/reset` does."""
        self.store.reset()
        self.faults.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
