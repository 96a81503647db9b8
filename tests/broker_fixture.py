"""RabbitMQ for the tests: a vhost of its own on the machine's server, and a private node to crash.

The machine's RabbitMQ (``TEST_RABBITMQ_HOST``, 127.0.0.1:5672; ``.ci/test`` starts it) gets a vhost per test
run, deleted at the end, so runs never share queues. A test that crashes the broker starts a private node
(``RabbitMQServer``: its own node name, ports and data directory under the test's tmp dir) and SIGKILLs that:
the shared server is never restarted.
"""
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import kombu
import pytest

RABBITMQ_HOST = os.environ.get("TEST_RABBITMQ_HOST", "127.0.0.1:5672")
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the server itself, not Debian's wrapper (which su's)
BROKERS = ["redis", "rabbitmq"]


def rabbitmqctl(*args: str) -> str:
    if not shutil.which("rabbitmqctl"):
        pytest.fail("RabbitMQ is not installed (apt-get install rabbitmq-server); .ci/test starts it")
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
    if done.returncode:
        pytest.fail(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


def broker_reachable(url: str, timeout: float = 1) -> bool:
    try:
        with kombu.Connection(url, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:  # noqa: BLE001 (any failure to connect means: not yet)
        return False


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """The URL of a vhost of this run on the machine's RabbitMQ (deleted at the end)."""
    vhost = f"slipway-test-{os.getpid()}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    url = f"amqp://guest:guest@{RABBITMQ_HOST}/{vhost}"
    if not broker_reachable(url, timeout=5):
        rabbitmqctl("delete_vhost", vhost)
        pytest.fail(f"RabbitMQ at {RABBITMQ_HOST} does not accept guest on vhost {vhost}")
    yield url
    rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(params=BROKERS)
def broker_url(request, settings) -> str:
    """Each broker in turn: the run's Redis database, or this run's RabbitMQ vhost."""
    return request.getfixturevalue("rabbitmq_url") if request.param == "rabbitmq" else settings.CELERY_BROKER_URL


def purge(url: str, queue: str) -> None:
    """Drop what an earlier test left in ``queue`` (a quorum queue outlives its workers)."""
    with kombu.Connection(url) as connection:
        try:
            connection.default_channel.queue_purge(queue)
        except Exception:  # noqa: BLE001 (no such queue yet: nothing to purge)
            pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RabbitMQServer:
    """A private RabbitMQ node on free ports with its data under ``workdir``, to crash and restart at will."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port, self.dist_port = free_port(), free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.env = {
            **os.environ, "HOME": str(workdir), "RABBITMQ_NODENAME": f"slipway-test-{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port), "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(workdir / "log"), "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid"),
        }
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        with (self.workdir / "server.log").open("ab") as log:
            self.process = subprocess.Popen([RABBITMQ_SERVER], env=self.env, cwd=self.workdir, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not broker_reachable(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"RabbitMQ node on port {self.port} did not start: "
                            f"{(self.workdir / 'server.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)

    def crash(self) -> None:
        """SIGKILL the node's whole process group: no clean shutdown, only what it had on disk survives."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def rabbitmq_server(tmp_path) -> Iterator[Callable[[], RabbitMQServer]]:
    if not Path(RABBITMQ_SERVER).exists():
        pytest.fail("RabbitMQ is not installed (apt-get install rabbitmq-server)")
    servers: list[RabbitMQServer] = []

    def start() -> RabbitMQServer:
        workdir = tmp_path / f"rabbitmq-{len(servers)}"
        workdir.mkdir()
        server = RabbitMQServer(workdir)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.crash()
