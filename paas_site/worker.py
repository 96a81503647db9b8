"""What makes a Celery worker observable: a heartbeat file for its liveness probe, and its metrics port.

Both are worker bootsteps (``paas_site.celery`` adds them), so they run in the worker's main process
only. The heartbeat is touched every ``SLIPWAY_WORKER_HEARTBEAT_SECONDS`` by the worker's timer (the
event loop's own with the prefork pool, the timer thread with solo/threads) until the worker
stops; ``manage.py worker_alive`` is the exec probe that reads its age. With
``SLIPWAY_WORKER_METRICS_PORT`` set the worker serves ``/metrics`` there (same token rule as the
web): its children's figures too when ``PROMETHEUS_MULTIPROC_DIR`` is set (see ``paas_site.metrics``).
"""
import json
import logging
import os
import threading
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery import bootsteps
from django.conf import settings

logger = logging.getLogger(__name__)


def heartbeat_touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    now = time.time()
    os.utime(path, (now, now))


class Heartbeat(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.path = Path(settings.SLIPWAY_WORKER_HEARTBEAT_FILE)
        self.timer_entry = None

    def start(self, worker):
        heartbeat_touch(self.path)
        self.timer_entry = worker.timer.call_repeatedly(settings.SLIPWAY_WORKER_HEARTBEAT_SECONDS, self.beat)

    def beat(self) -> None:
        try:
            heartbeat_touch(self.path)
        except OSError as exc:  # the probe will say the heartbeat is stale; the worker keeps working
            logger.warning("worker heartbeat %s not written: %s", self.path, exc)

    def stop(self, worker):
        # the file is left to go stale: a worker draining its tasks after SIGTERM must not fail its probe at once
        if self.timer_entry is not None:
            self.timer_entry.cancel()


def metrics_app(environ, start_response):
    """WSGI: the worker's event figures at ``/metrics``, behind the metrics token."""
    from paas_site import metrics  # not at import: paas_site.celery loads this module before Django is set up

    if environ.get("PATH_INFO", "/").rstrip("/") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: the worker serves /metrics only\n"]
    refusal = metrics.scrape_refusal(environ.get("HTTP_AUTHORIZATION", ""))
    if refusal:
        status, reason = refusal
        start_response(f"{status} {'Unauthorized' if status == 401 else 'Forbidden'}",
                       [("Content-Type", "application/json")])
        return [json.dumps({"message": reason}).encode()]
    start_response("200 OK", [("Content-Type", metrics.CONTENT_TYPE)])
    return [metrics.exposition()]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name): scrapes are not worth a log line
        pass


class MetricsServer(bootsteps.StartStopStep):
    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.server = None

    def start(self, worker):
        port = settings.SLIPWAY_WORKER_METRICS_PORT
        if not port:
            return
        self.server = make_server(settings.SLIPWAY_WORKER_METRICS_ADDRESS, port, metrics_app,
                                  server_class=_Server, handler_class=_QuietHandler)
        threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True).start()
        logger.info("worker metrics on %s:%s/metrics", settings.SLIPWAY_WORKER_METRICS_ADDRESS, port)

    def stop(self, worker):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
