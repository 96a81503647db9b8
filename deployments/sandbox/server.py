"""`SandboxCluster`: the sandbox's HTTP server and controller, started and stopped together."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

from werkzeug.serving import BaseWSGIServer, make_server

from .app import SandboxApp
from .controller import DEFAULT_TIME_SCALE, ControllerManager, Timing
from .faults import FaultInjector
from .store import Store


class SandboxCluster:
    """A Kubernetes API emulator listening on `host:port` (0 picks a free port).

    The socket is bound in the constructor, so `url` is known (and connections
    are queued) before `start()`. Sandbox time (see `controller`):
    `rollout_delay` is how many seconds a simulated pod takes to run, and
    `time_scale` how many seconds each Kubernetes second in a spec lasts
    (`progressDeadlineSeconds`, `minReadySeconds`, the HPA's stabilisation
    window). With a `token`, Kubernetes API requests must send
    `Authorization: Bearer <token>`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, rollout_delay: float = 0.2,
                 token: str | None = None, time_scale: float = DEFAULT_TIME_SCALE) -> None:
        self.store = Store()
        self.faults = FaultInjector()
        self._controller = ControllerManager(self.store, Timing(rollout_delay, time_scale))
        self._server: BaseWSGIServer = make_server(host, port, SandboxApp(self.store, self.faults, token),
                                                   threaded=True)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

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
