"""Probes and the Prometheus endpoint: ``/healthz``, ``/readyz``, ``/metrics``.

Answered by the first middleware, before host validation, the HTTPS redirect, sessions or any
logging of the request's headers: a kubelet probes a pod by its IP over plain HTTP, and a probe
must cost next to nothing. ``/healthz`` says the process serves requests (no dependency is
asked); ``/readyz`` checks the database (reachable, every migration applied) and the broker,
and names what fails with a 503; what it says of a failure is the exception's class, never its
text (which may hold a URL with a password). ``/metrics`` is ``paas_site.metrics``' exposition
plus the database's state figures (``workflows.metrics``), behind the metrics token.
"""
import json
import logging
from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse

from paas_site import metrics

logger = logging.getLogger(__name__)
BROKER_TIMEOUT = 2.0
_migrated: set[str] = set()  # databases found fully migrated once stay so for this process's code


def _json(status: int, body: dict) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    return _json(200, {"status": "ok"})


def database_problem(alias: str = DEFAULT_DB_ALIAS) -> str:
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if alias not in _migrated:
            executor = MigrationExecutor(connection)
            unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
            if unapplied:
                return f"{len(unapplied)} migration(s) not applied (run manage.py migrate)"
            _migrated.add(alias)
    except Exception as exc:  # noqa: BLE001 (any failure means not ready; the class names it without secrets)
        connection.close_if_unusable_or_obsolete()
        logger.warning("readiness: database unavailable (%s)", type(exc).__name__)
        return f"unreachable ({type(exc).__name__})"
    return ""


def broker_problem() -> str:
    from paas_site.celery import app

    try:
        with app.connection_for_write(connect_timeout=BROKER_TIMEOUT) as connection:
            connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 (as above)
        logger.warning("readiness: broker unavailable (%s)", type(exc).__name__)
        return f"unreachable ({type(exc).__name__})"
    return ""


def readyz(request: HttpRequest) -> HttpResponse:
    checks = {"database": database_problem(), "broker": broker_problem()}
    failing = {name: problem for name, problem in checks.items() if problem}
    body = {"status": "unavailable" if failing else "ok",
            "checks": {name: problem or "ok" for name, problem in checks.items()}}
    return _json(503 if failing else 200, body)


def metrics_view(request: HttpRequest) -> HttpResponse:
    refusal = metrics.scrape_refusal(request.META.get("HTTP_AUTHORIZATION", ""))
    if refusal:
        status, reason = refusal
        response = _json(status, {"message": reason, "code": "not_authenticated" if status == 401 else "permission_denied"})
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="slipway-metrics"'
        return response
    from workflows.metrics import StateCollector

    return HttpResponse(metrics.exposition(StateCollector()), content_type=metrics.CONTENT_TYPE)


ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz, "/readyz": readyz, "/metrics": metrics_view,
}


class HealthMiddleware:
    """Serve the probes and ``/metrics`` (GET/HEAD) before anything else runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = ENDPOINTS.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return _json(405, {"message": f"{request.path_info} answers GET only", "code": "method_not_allowed"})
        return view(request)
