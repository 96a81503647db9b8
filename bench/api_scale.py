"""Benchmark: the release API at scale (100,000 releases, 1,000,000 audit events) under a real WSGI server.

Run by hand against a throw-away PostgreSQL database whose name contains
"bench" (created if missing, migrated, then FLUSHED), never in CI. Needs
gunicorn (bench/requirements.txt) and wrk (Debian package ``wrk``)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/slipway_benchdata \\
        .venv/bin/python bench/api_scale.py                 # load (about 2-4 min), then measure
    ... bench/api_scale.py --reuse                          # measure again on the loaded data

The data set: 100 projects × 10 applications, three environments (dev needs
no approval, test one, prod two), one cluster. Release ``i`` belongs to
application ``i mod 1000`` and environment ``i mod 3``, its ``created_at``
spread over a year in id order; 1 in 20 failed, the rest succeeded; every prod
release has its two approvals. Each release has ``events / releases`` audit
events (10 by default: requested, approved, the transitions and the finished
steps), written in id order with a valid hash chain, so ``manage.py
audit_verify`` (and bench/audit_verify.py) can check all of it. Releases and
approvals are set-based ``INSERT … SELECT generate_series``; audit events are
hashed in Python with the model's own ``compute_hash`` and streamed with
``COPY``.

What it measures, as a platform admin (``staff``, sees all) and as a member of
10 of the 100 projects (``member``):

- SQL statements per request (``CaptureQueriesContext`` around the Django test
  client), after the first 1,000 releases and again at full size;
- latency p50/p95/p99 from one client (keep-alive, sequential requests);
- throughput with 16 concurrent connections (wrk, 2 threads).

The server is gunicorn with 4 sync workers (2 cores: requests wait on
PostgreSQL as much as on CPU), DEBUG off, persistent database connections
(``DATABASE_CONN_MAX_AGE=60``, as a deployment sets it).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchdb import database_prepare, free_port, production_like_environment, sql, wait_for_port  # noqa: E402

production_like_environment()
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,testserver")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")  # plain HTTP on loopback: no TLS proxy in front
os.environ.setdefault("STATIC_ROOT", tempfile.mkdtemp(prefix="slipway-bench-static-"))

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from deployments.choices import Role  # noqa: E402
from deployments.models import Application, Cluster, Environment, Project, ProjectMembership  # noqa: E402
from workflows.audit import GENESIS_HASH  # noqa: E402
from workflows.chain import signing_key_id  # noqa: E402
from workflows.models import ApiToken, AuditChainHead, AuditEvent, Release  # noqa: E402

PROJECTS, APPS_PER_PROJECT = 100, 10
APPS = PROJECTS * APPS_PER_PROJECT
MEMBER_PROJECTS = 10
EPOCH = datetime(2025, 11, 1, tzinfo=UTC)
YEAR_SECONDS = 365 * 86400
FIRST_BATCH = 1_000  # releases loaded before the first query count
AUDIT_COLUMNS = ["id", "created_at", "actor", "actor_user_id", "action", "target_type", "target_id", "target_repr",
                 "project_id", "release_id", "from_state", "to_state", "before", "after", "message", "correlation_id",
                 "prev_hash", "hash", "key_id"]
# (action, from_state, to_state, after) of each release's events, in order; a release has the first N of them
LIFE = [
    ("release.requested", "", "requested", None),
    ("release.approved", "", "", {"decision": "approve", "fingerprint": "0" * 64}),
    ("release.transitioned", "requested", "approved", None),
    ("release.transitioned", "approved", "building", None),
    ("step.finished", "", "", {"step": "build", "attempt": 1, "status": "succeeded"}),
    ("release.transitioned", "building", "deploying", None),
    ("step.finished", "", "", {"step": "deploy", "attempt": 1, "status": "succeeded"}),
    ("release.transitioned", "deploying", "verifying", None),
    ("step.finished", "", "", {"step": "verify", "attempt": 1, "status": "succeeded"}),
    ("release.transitioned", "verifying", "succeeded", None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the loaded data if it has the same size")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per endpoint (default 200)")
    parser.add_argument("--duration", type=int, default=15, help="seconds of wrk per endpoint (default 15)")
    args = parser.parse_args()
    per_release = args.events // args.releases
    if not 1 <= per_release <= len(LIFE) or args.releases < FIRST_BATCH:
        sys.exit(f"--events must be 1 to {len(LIFE)} × --releases, and --releases at least {FIRST_BATCH}")

    database_prepare()
    load_avg("before")
    counts_small = None
    if args.reuse and Release.objects.count() == args.releases and AuditEvent.objects.count() == args.events:
        print("   reusing the loaded data set")
    else:
        reference_data()
        load_releases(0, FIRST_BATCH, per_release)
        counts_small = statement_counts()
        load_releases(FIRST_BATCH, args.releases, per_release)
    started = time.perf_counter()
    sql("VACUUM ANALYZE")
    print(f"   VACUUM ANALYZE {time.perf_counter() - started:.1f} s")
    counts = statement_counts()

    print("\n== SQL statements per request" + (f" ({FIRST_BATCH:,} releases → {args.releases:,})" if counts_small else ""))
    for name, count in counts.items():
        small = f"{counts_small[name]} → " if counts_small else ""
        print(f"   {name:<40} {small}{count}")

    results = serve_and_measure(args.requests, args.duration)
    print("\n== summary (ms; one client: sequential keep-alive requests; 16 clients: wrk -t2 -c16)")
    print(f"   {'endpoint':<40} {'SQL':>4} {'p50':>7} {'p95':>7} {'p99':>7} {'req/s':>7} | "
          f"{'16: req/s':>9} {'p50':>7} {'p99':>7}")
    for name, r in results.items():
        print(f"   {name:<40} {counts[name]:>4} {r['p50']:7.1f} {r['p95']:7.1f} {r['p99']:7.1f} {r['rps1']:7.1f} | "
              f"{r['rps16']:9.1f} {r['p50_16']:7.1f} {r['p99_16']:7.1f}")
    load_avg("after")


def load_avg(when: str) -> None:
    one, five, fifteen = os.getloadavg()
    print(f"   load average {when}: {one:.2f} {five:.2f} {fifteen:.2f}")


# -- the data set -------------------------------------------------------------------------
def reference_data() -> None:
    started = time.perf_counter()
    call_command("flush", interactive=False, verbosity=0)
    users = get_user_model().objects
    users.create_superuser("bench-staff", "staff@example.com", None)
    member = users.create_user("bench-member")
    approvers = [users.create_user(f"bench-approver{n}") for n in (1, 2)]
    cluster = Cluster.objects.create(name="bench", api_server="https://bench.invalid", token="bench")
    for rank, (name, approvals) in enumerate((("dev", 0), ("test", 1), ("prod", 2))):
        Environment.objects.create(name=name, rank=rank, cluster=cluster, required_approvals=approvals)
    projects = Project.objects.bulk_create([Project(slug=f"p{n:03d}", name=f"Project {n}") for n in range(PROJECTS)])
    ProjectMembership.objects.bulk_create(
        [ProjectMembership(project=p, user=member, role=Role.DEVELOPER) for p in projects[:MEMBER_PROJECTS]]
        + [ProjectMembership(project=p, user=a, role=Role.APPROVER) for p in projects for a in approvers]
    )
    Application.objects.bulk_create([
        Application(project=projects[n // APPS_PER_PROJECT], name=f"app-{n % APPS_PER_PROJECT}",
                    image=f"registry.example.com/p{n // APPS_PER_PROJECT:03d}/app-{n % APPS_PER_PROJECT}")
        for n in range(APPS)
    ])
    print(f"== reference data: {PROJECTS} projects, {APPS} applications, 3 environments "
          f"({time.perf_counter() - started:.1f} s)")


def load_releases(first: int, last: int, per_release: int) -> None:
    """Releases ``first < i <= last`` with their approvals and audit events, appended to the hash chain."""
    started = time.perf_counter()
    params = {"first": first, "last": last, "epoch": EPOCH, "span": YEAR_SECONDS, "apps": APPS}
    # application ord n (0-based, by id) and environment (dev, test, prod by rank) of release i
    sql("""
        INSERT INTO workflows_release (id, application_id, environment_id, requested_by_id, requested_via, version,
            image, image_digest, config, config_hash, description, state, resume_step, failed_step, failure_reason,
            correlation_id, created_at, updated_at, approved_at, started_at, finished_at)
        SELECT i, a.id, e.id, u.id, 'api', '1.' || (i / %(apps)s), a.image || ':1.' || (i / %(apps)s),
            'sha256:' || md5(i::text) || md5(i::text), '{"env": {}, "files": {}}', md5('cfg'), '',
            CASE WHEN i %% 20 = 0 THEN 'failed' ELSE 'succeeded' END, '',
            CASE WHEN i %% 20 = 0 THEN 'verify' ELSE '' END,
            CASE WHEN i %% 20 = 0 THEN 'rollout of ' || a.name || ' failed' ELSE '' END, '',
            t, t + interval '2 minutes', t + interval '1 minute', t + interval '1 minute', t + interval '2 minutes'
        FROM generate_series(%(first)s + 1, %(last)s) AS i
        CROSS JOIN LATERAL (SELECT %(epoch)s::timestamptz + (i::float8 * %(span)s / 100000) * interval '1 second') AS ts(t)
        JOIN (SELECT id, image, name, row_number() OVER (ORDER BY id) - 1 AS n FROM deployments_application) a
            ON a.n = i %% %(apps)s
        JOIN (SELECT id, row_number() OVER (ORDER BY rank) - 1 AS n FROM deployments_environment) e ON e.n = i %% 3
        JOIN auth_user u ON u.username = 'bench-member'
    """, params)
    sql("""
        INSERT INTO workflows_approval (release_id, approver_id, decision, comment, fingerprint, created_at)
        SELECT r.id, u.id, 'approve', '', md5(r.image), r.approved_at
        FROM workflows_release r JOIN deployments_environment e ON e.id = r.environment_id AND e.name = 'prod'
        CROSS JOIN auth_user u
        WHERE r.id > %(first)s AND r.id <= %(last)s AND u.username LIKE 'bench-approver%%'
    """, params)
    sql("SELECT setval(pg_get_serial_sequence('workflows_release', 'id'), %(last)s)", params)
    events = audit_events_copy(first, last, per_release)
    print(f"   releases {first + 1:,}–{last:,}: {last - first:,} releases and {events:,} audit events "
          f"in {time.perf_counter() - started:.1f} s")


def audit_events_copy(first: int, last: int, per_release: int) -> int:
    releases = list(Release.objects.filter(id__gt=first, id__lte=last).order_by("id").values_list(
        "id", "created_at", "state", "application__project_id", "application__name", "version",
        "environment__name"))  # read before COPY starts: the connection cannot fetch while it copies
    head = AuditChainHead.objects.filter(id=1).values_list("last_hash", flat=True).first() or GENESIS_HASH
    next_id = first * per_release + 1
    key_id = signing_key_id()
    written = 0
    with connection.cursor() as cursor, cursor.cursor.copy(
        f"COPY workflows_auditevent ({', '.join(AUDIT_COLUMNS)}) FROM STDIN"
    ) as copy:
        for release_id, created_at, state, project_id, app_name, version, env_name in releases:
            target = f"release #{release_id} {app_name} {version} → {env_name}"
            for step, (action, from_state, to_state, after) in enumerate(LIFE[:per_release]):
                if state == "failed" and to_state == "succeeded":
                    to_state = "failed"
                event = AuditEvent(
                    id=next_id, created_at=created_at + timedelta(seconds=step), actor="system:worker",
                    action=action, target_type="workflows.release", target_id=str(release_id), target_repr=target,
                    project_id=project_id, release_id=release_id, from_state=from_state, to_state=to_state,
                    after=after, message=f"{target} {from_state} → {to_state}", correlation_id="", prev_hash=head,
                    key_id=key_id,
                )
                event.hash = head = event.compute_hash()
                copy.write_row([getattr(event, column) if column not in ("before", "after") else
                                (Jsonb(event.after) if column == "after" and event.after is not None else None)
                                for column in AUDIT_COLUMNS])
                next_id += 1
                written += 1
    sql("SELECT setval(pg_get_serial_sequence('workflows_auditevent', 'id'), %s)", [next_id - 1])
    AuditChainHead.objects.update_or_create(id=1, defaults={"last_hash": head})
    return written


# -- what is measured ----------------------------------------------------------------------
def endpoints() -> dict[str, tuple[str, str]]:
    """name -> (user, path); the release in the middle of the id range, in a project the member belongs to."""
    total = Release.objects.count()
    middle = Release.objects.filter(id__lte=total // 2, application__project__slug="p000").order_by("-id").first()
    return {
        "releases (staff)": ("staff", "/api/v1/releases/?page_size=50"),
        "releases (member of 10 projects)": ("member", "/api/v1/releases/?page_size=50"),
        "releases ?environment=prod&state=failed": ("staff", "/api/v1/releases/?page_size=50&environment=prod&state=failed"),
        "releases ?project=p042": ("staff", "/api/v1/releases/?page_size=50&project=p042"),
        "release detail": ("staff", f"/api/v1/releases/{middle.id}/"),
        "release audit page": ("staff", f"/api/v1/releases/{middle.id}/audit/"),
    }


def tokens() -> dict[str, str]:
    """Fresh API tokens (only their hashes are stored, so earlier ones cannot be read back)."""
    users = get_user_model().objects
    return {role: ApiToken.objects.create(user=users.get(username=f"bench-{role}"), name="bench")[1]
            for role in ("staff", "member")}


def statement_counts() -> dict[str, int]:
    client, keys, counts = Client(), tokens(), {}
    for name, (user, path) in endpoints().items():
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path, HTTP_AUTHORIZATION=f"Token {keys[user]}")
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
        counts[name] = len(queries)
    return counts


def serve_and_measure(requests: int, duration: int) -> dict[str, dict[str, float]]:
    port = free_port()
    env = {**os.environ, "DATABASE_CONN_MAX_AGE": "60"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "paas_site.wsgi:application", "--workers", "4",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=Path(__file__).resolve().parent.parent, env=env,
    )
    try:
        wait_for_port(port, "gunicorn")
        keys, results = tokens(), {}
        print(f"\n== gunicorn (4 sync workers) on :{port}")
        for name, (user, path) in endpoints().items():
            results[name] = {**one_client(port, path, keys[user], requests),
                             **sixteen_clients(port, path, keys[user], duration)}
            r = results[name]
            print(f"   {name:<40} 1 client p50 {r['p50']:.1f} p95 {r['p95']:.1f} p99 {r['p99']:.1f} ms; "
                  f"16 clients {r['rps16']:.0f} req/s")
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def one_client(port: int, path: str, key: str, requests: int) -> dict[str, float]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {key}"}
    timings = []
    for n in range(requests + 20):  # the first 20 warm every gunicorn worker up
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            sys.exit(f"GET {path}: HTTP {response.status}")
        if n >= 20:
            timings.append((time.perf_counter() - started) * 1000)
    conn.close()
    cuts = statistics.quantiles(timings, n=100)
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "rps1": 1000 * len(timings) / sum(timings)}


def sixteen_clients(port: int, path: str, key: str, duration: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{duration}s", "--latency", "-H", f"Authorization: Token {key}",
         f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True,
    ).stdout
    if "Non-2xx" in out:
        sys.exit(f"wrk saw errors on {path}:\n{out}")

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    return {"rps16": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]), "p50_16": ms("50%"), "p99_16": ms("99%")}


if __name__ == "__main__":
    main()
