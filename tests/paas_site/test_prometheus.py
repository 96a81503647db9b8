"""A real Prometheus scrapes a running Slipway on loopback: the web's /metrics and a worker's metrics port.

The worker runs Celery's prefork pool with ``PROMETHEUS_MULTIPROC_DIR``, so the step figures are
recorded in its child process and served by its main process, as in production; the web is
``manage.py runserver`` in its own process, with a multiprocess directory of its own (as gunicorn's
workers would share one). Prometheus (Debian's ``/usr/bin/prometheus``) scrapes
both every second with the bearer token and loads the shipped alert rules; the test runs a release
through the real pipeline and asks Prometheus's HTTP API for it.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from deployments.models import Environment
from tests.deployments.factories import ApplicationFactory
from tests.reliability.conftest import ROOT, WorkerProcess, free_port, tasks_sent_to, wait_until
from tests.workflows.factories import file_release, wait_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
TOKEN = "prometheus-scrape-token-" + "p" * 20
CONFIG = """\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{rules}]
scrape_configs:
  - job_name: slipway-web
    authorization: {{credentials: {token}}}
    static_configs: [{{targets: ['127.0.0.1:{web}']}}]
  - job_name: slipway-worker
    authorization: {{credentials: {token}}}
    static_configs: [{{targets: ['127.0.0.1:{worker}']}}]
"""


def get(url: str, token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback servers of the test)
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


class Server:
    """A process of the test in its own process group, logged to a file, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, command: list[str], log, env: dict | None = None):
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@pytest.fixture
def stack(tmp_path, sandbox_cluster):
    """Web, worker and Prometheus, each on a free loopback port; all stopped after the test."""
    if not shutil.which("prometheus"):
        pytest.fail("prometheus is not installed: run the tests through .ci/test (apt-get install prometheus)")
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    web_port, worker_port, prometheus_port = free_port(), free_port(), free_port()
    (tmp_path / "worker-metrics").mkdir()
    (tmp_path / "web-metrics").mkdir()  # the web in multiprocess mode too, as under gunicorn
    common = {"SLIPWAY_METRICS_TOKEN": TOKEN, "DATABASE_URL": database_url,
              "SLIPWAY_AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints")}
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(
        tmp_path / "worker.log", queue=queue, broker_url=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
        SLIPWAY_WORKER_METRICS_PORT=str(worker_port), SLIPWAY_WORKER_METRICS_ADDRESS="127.0.0.1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "worker-metrics"),
        SLIPWAY_WORKER_HEARTBEAT_FILE=str(tmp_path / "heartbeat"), SLIPWAY_WORKER_HEARTBEAT_SECONDS="0.5", **common,
    )
    worker.command = [sys.executable, "-m", "celery", "-A", "paas_site", "worker", "--pool=prefork", "--concurrency=1",
                      "-Q", queue, "-n", f"{queue}@%h", "--without-heartbeat", "--without-mingle", "--without-gossip",
                      "--loglevel=INFO"]
    config = tmp_path / "prometheus.yml"
    config.write_text(CONFIG.format(rules=ROOT / "deploy" / "monitoring" / "alerts.yml", token=TOKEN,
                                    web=web_port, worker=worker_port))
    servers = []
    with (tmp_path / "servers.log").open("ab") as log:
        worker.start()
        servers.append(Server([sys.executable, "manage.py", "runserver", f"127.0.0.1:{web_port}", "--noreload",
                               "--skip-checks"], log,
                               env={**os.environ, **common, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "web-metrics")}))
        servers.append(Server(["prometheus", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{prometheus_port}",
                               f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--log.level=warn"], log))
    stack = {"web": f"http://127.0.0.1:{web_port}", "worker": f"http://127.0.0.1:{worker_port}",
             "prometheus": f"http://127.0.0.1:{prometheus_port}", "heartbeat": tmp_path / "heartbeat",
             "queue": queue, "worker_process": worker}
    try:
        up = wait_until(lambda: all(get(stack[name] + path)[0] for name, path in
                                    (("web", "/healthz"), ("worker", "/metrics"), ("prometheus", "/-/ready"))), 30)
        assert up, (tmp_path / "servers.log").read_text() + worker.log()
        yield stack
    finally:
        worker.kill()
        for server in servers:
            server.stop()


def query(stack, expr: str) -> dict[tuple, float]:
    """Prometheus's instant query API: {sorted labels without job/instance: value}."""
    status, body = get(f"{stack['prometheus']}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200, body
    return {tuple(sorted((k, v) for k, v in r["metric"].items() if k not in ("job", "instance", "__name__"))):
            float(r["value"][1]) for r in json.loads(body)["data"]["result"]}


def test_prometheus_scrapes_the_release_just_run_and_its_step_durations(stack, project, developer, sandbox_cluster):
    # given a running web, worker and Prometheus; the worker's port refuses a scrape without the token
    assert get(stack["worker"] + "/metrics")[0] == 401
    assert get(stack["web"] + "/metrics")[0] == 401
    call_command("worker_alive", file=stack["heartbeat"], max_age=5)  # the real worker's heartbeat is fresh
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=0, rollout_deadline_seconds=5)
    app = ApplicationFactory(project=project, name="api", replicas=1)
    # when a release runs through the real pipeline on that worker
    with tasks_sent_to(queue=stack["queue"]):
        release = wait_final(file_release(actor=developer, application=app, environment=dev), timeout=40)
    assert release.state == "succeeded", release.failure_reason + stack["worker_process"].log()

    # then Prometheus has scraped the release counted (web, from the database) and its steps observed (worker)
    def scraped() -> bool:
        counted = query(stack, 'slipway_releases{job="slipway-web"}')
        steps = query(stack, 'sum by (step) (slipway_step_duration_seconds_count{job="slipway-worker", outcome="succeeded"})')
        return counted.get((("environment", "dev"), ("state", "succeeded"))) == 1 and \
            steps == {(("step", "build"),): 1, (("step", "deploy"),): 1, (("step", "verify"),): 1}

    assert wait_until(scraped, 20, every=0.5), (query(stack, "slipway_releases"),
                                                 query(stack, "slipway_step_duration_seconds_count"))
    durations = query(stack, 'slipway_step_duration_seconds_sum{job="slipway-worker"}')
    assert all(seconds > 0 for seconds in durations.values()) and len(durations) == 3
    # and it loaded the shipped alert rules, which evaluate without error against these series
    status, body = get(f"{stack['prometheus']}/api/v1/rules")
    rules = [rule for group in json.loads(body)["data"]["groups"] for rule in group["rules"]]
    assert {rule["name"] for rule in rules} >= {"SlipwayReleaseStuck", "SlipwayClusterUnreachable",
                                                "SlipwayApprovalWaiting", "SlipwayAuditCheckpointStale"}
    assert wait_until(lambda: all(r["health"] == "ok" for r in json.loads(
        get(f"{stack['prometheus']}/api/v1/rules")[1])["data"]["groups"][0]["rules"]), 5), body

    # a worker that stopped is no longer alive for its probe once its heartbeat is older than the limit
    os.killpg(stack["worker_process"].process.pid, signal.SIGTERM)
    stack["worker_process"].process.wait(15)

    def not_alive() -> bool:
        try:
            call_command("worker_alive", file=stack["heartbeat"], max_age=1.5)
        except CommandError as exc:
            return "not alive" in str(exc)
        return False

    assert wait_until(not_alive, 5)


def test_a_worker_whose_heartbeat_went_stale_is_not_alive(tmp_path):
    beat = tmp_path / "heartbeat"
    beat.touch()
    old = time.time() - 120
    os.utime(beat, (old, old))
    with pytest.raises(CommandError, match="heartbeat .* is 12\\ds old"):
        call_command("worker_alive", file=beat, max_age=30)
