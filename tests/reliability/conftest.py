"""Real processes to break on purpose: Celery workers in subprocesses, a private Redis, a stalling proxy.

Nothing here touches the machine's shared Redis or PostgreSQL servers: a test
that kills a server starts its own. Every port is picked free.
"""
import contextlib
import os
import select
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from paas_site.brokers import celery_broker_settings, task_queue
from paas_site.celery import app as celery_app
from tests.conftest import LOOPBACK

ROOT = Path(__file__).resolve().parents[2]
# Short leases so the reaper re-drives a dead worker's step within seconds; a live worker's heartbeat renews them.
LEASE_SECONDS = 2
HEARTBEAT_SECONDS = 0.5


def wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.1,
               on_tick: Callable[[], object] | None = None) -> bool:
    """Poll ``predicate`` until true or ``timeout``; ``on_tick`` plays the beat between polls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if on_tick:
            on_tick()
        time.sleep(every)
    return predicate()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerProcess:
    """``celery worker`` in its own process group, on the test database, so SIGKILL takes all of it."""

    def __init__(self, log_path: Path, *, queue: str, broker_url: str, concurrency: int = 1, pool: str = "",
                 **env: str):
        self.log_path = log_path
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_BROKER_URL": broker_url,
            "CELERY_TASK_DEFAULT_QUEUE": queue,
            "SLIPWAY_STEP_LEASE_SECONDS": str(LEASE_SECONDS),
            "SLIPWAY_STEP_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "SLIPWAY_VERIFY_POLL_SECONDS": "0.05",
            "SLIPWAY_RETRY_BASE_SECONDS": "0.2",
            "SLIPWAY_RETRY_MAX_SECONDS": "0.5",
            "SLIPWAY_OUTBOUND_ALLOW": ",".join(LOOPBACK),  # as the test process allows it (tests/conftest.py)
            **env,
        }
        pool = pool or ("solo" if concurrency == 1 else "threads")
        self.command = [sys.executable, "-m", "celery", "-A", "paas_site", "worker", f"--pool={pool}",
                        *([f"--concurrency={concurrency}"] if pool != "solo" else []), "-Q", queue,
                        "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel=INFO"]
        self.process: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def terminate(self) -> None:
        """SIGTERM, as Kubernetes stops a pod: Celery's warm shutdown."""
        os.kill(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost node would: no cleanup, no acks."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def start_worker(tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start subprocess workers; every one still running is killed after the test."""
    workers: list[WorkerProcess] = []

    def start(**options) -> WorkerProcess:
        worker = WorkerProcess(tmp_path / f"worker-{len(workers)}.log", **options).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.kill()


@contextlib.contextmanager
def tasks_sent_to(*, queue: str, broker_url: str | None = None) -> Iterator[None]:
    """Send this process's tasks to ``queue`` (on another broker, if given), where only the test's worker listens."""
    conf = celery_app.conf
    saved = conf.task_default_queue, conf.broker_write_url, conf.broker_transport_options

    def reconnect() -> None:  # the app keeps the pools of the URL it first used (kombu keeps them all): forget them
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    # Celery builds its queue table once, from the default queue of that moment, and later workers of this
    # process (the session's ``celery_worker``) consume from it: build it now, and take our queue out after.
    queues = celery_app.amqp.queues
    conf.task_default_queue = queue
    if broker_url:
        conf.broker_write_url = broker_url  # what sending uses (``broker_url`` is shadowed by the Django setting)
        # publish as a process configured for that broker would (RabbitMQ: confirms, a quorum queue)
        conf.broker_transport_options = {**saved[2], **celery_broker_settings(broker_url)["broker_transport_options"]}
        queues.add(task_queue(queue, broker_url))
        reconnect()
    try:
        yield
    finally:
        conf.task_default_queue, conf.broker_write_url, conf.broker_transport_options = saved
        queues.pop(queue, None)
        if broker_url:
            reconnect()


class RedisServer:
    """A private ``redis-server`` on a free port, to crash and restart at will."""

    def __init__(self, workdir: Path, *, persistent: bool):
        self.workdir, self.persistent = workdir, persistent
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        durability = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", *durability,
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if not wait_until(self.ping, 10, every=0.05):
            pytest.fail(f"redis-server on port {self.port} did not start")

    def crash(self) -> None:
        """SIGKILL: without persistence every queued and unacknowledged message is gone."""
        self.process.kill()
        self.process.wait(10)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis_server(tmp_path) -> Iterator[Callable[..., RedisServer]]:
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    servers: list[RedisServer] = []

    def start(*, persistent: bool) -> RedisServer:
        server = RedisServer(tmp_path, persistent=persistent)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.process and server.process.poll() is None:
            server.crash()


class StallingProxy:
    """A TCP proxy to ``upstream`` that can hold the next connections open without ever answering.

    In front of a registry it makes the build step hang in a real socket read,
    exactly where a slow or wedged registry would hold it.
    """

    def __init__(self, upstream: str):
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.stalled = 0
        self._to_stall = 0
        self._to_pass = 0
        self._lock = threading.Lock()
        self._released = threading.Event()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stall_next(self, count: int = 1, *, after: int = 0) -> None:
        """Hold the ``count`` connections that follow the next ``after`` ones (those pass through)."""
        with self._lock:
            self._to_stall, self._to_pass = count, after

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, client: socket.socket) -> None:
        with self._lock:
            passing = self._to_pass > 0
            self._to_pass -= passing
            stall = not passing and self._to_stall > 0
            if stall:
                self._to_stall -= 1
                self.stalled += 1
        if stall:
            self._released.wait()
            return
        with socket.create_connection(self.upstream) as upstream:
            sockets = [client, upstream]
            while True:
                readable, _, _ = select.select(sockets, [], [], 30)
                if not readable:
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is client else client).sendall(data)
