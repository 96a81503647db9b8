"""Benchmark: what one Prometheus scrape of /metrics costs the database at 100,000 releases; ms per scrape.

Run by hand, never in CI (it refuses a database whose name lacks "bench", and replaces its releases,
audit events and metering gaps)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/slipway_bench_metrics .venv/bin/python bench/metrics_scrape.py

It loads ``--releases`` releases (every state, 5 environments, 50 applications), ``--events`` audit
events and 10,000 metering gaps with set-based SQL, then times the state collector's exposition
(``workflows.metrics.StateCollector``: what /metrics adds to the event figures) ``--runs`` times and
prints the median against a named ceiling: 150 ms, 1 % of a 15-second scrape interval on one core.
It also prints the floor: one ``SELECT count(*)`` of the releases table, and the ratio.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas_site.settings")
from benchdb import database_prepare, production_like_environment, sql  # noqa: E402

production_like_environment()
os.environ.setdefault("SLIPWAY_AUDIT_CHECKPOINT_DIR", tempfile.mkdtemp(prefix="slipway-bench-checkpoints-"))

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from deployments.models import Application, Cluster, Environment, Project  # noqa: E402
from workflows.choices import IN_FLIGHT, ReleaseState  # noqa: E402
from workflows.metrics import StateCollector  # noqa: E402
from workflows.models import Release  # noqa: E402

CEILING_MS = 150.0
SETTLED = [s for s in ReleaseState.values if s not in IN_FLIGHT]


def load(releases: int, events: int) -> None:
    database_prepare()
    sql("TRUNCATE workflows_release, workflows_auditevent, billing_meteringgap CASCADE")
    user, _ = get_user_model().objects.get_or_create(username="bench")
    project, _ = Project.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    cluster, _ = Cluster.objects.get_or_create(name="bench", defaults={"api_server": "https://k8s.example.com"})
    environments = [Environment.objects.get_or_create(name=f"env{n}", defaults={"cluster": cluster})[0] for n in range(5)]
    applications = [Application.objects.get_or_create(project=project, name=f"app{n}",
                                                      defaults={"image": "registry.example.com/bench/app"})[0]
                    for n in range(50)]
    template = Release.objects.create(application=applications[0], environment=environments[0], requested_by=user,
                                      version="1.0", image="registry.example.com/bench/app:1.0", config_hash="0" * 64)
    columns = [f.column for f in Release._meta.concrete_fields if f.column != "id"]
    overrides = {
        "state": f"(ARRAY{SETTLED!r})[1 + n %% {len(SETTLED)}]",
        "environment_id": f"(ARRAY{[e.id for e in environments]})[1 + n %% 5]",
        "application_id": f"(ARRAY{[a.id for a in applications]})[1 + (n / 5) %% 50]",
        "created_at": "now() - n * interval '1 minute'", "approved_at": "now() - n * interval '1 minute'",
        "started_at": "now() - n * interval '1 minute'",
    }
    started = time.perf_counter()
    sql(f"INSERT INTO workflows_release ({', '.join(columns)}) "
        f"SELECT {', '.join(overrides.get(c, c) for c in columns)} "
        f"FROM workflows_release, generate_series(1, %s) AS n WHERE id = %s", [releases, template.id])
    template.delete()
    sql("INSERT INTO workflows_auditevent (created_at, actor, action, target_type, target_id, target_repr, from_state, "
        "to_state, message, correlation_id, prev_hash, hash, key_id, before, after) "
        "SELECT now() - n * interval '1 second', 'system:bench', 'release.transitioned', 'workflows.release', n::text, "
        "'r', '', '', '', '', md5(n::text), md5(n::text) || md5((n + 1)::text), 'bench', '{}'::jsonb, '{}'::jsonb "
        "FROM generate_series(1, %s) AS n", [events])
    sql("INSERT INTO billing_meteringgap (cluster_id, sampled_at, interval_seconds, reason) "
        "SELECT %s, now() - n * interval '1 minute', 300, 'bench' FROM generate_series(1, 10000) AS n", [cluster.id])
    sql("ANALYZE")
    print(f"   loaded {releases} releases, {events} audit events, 10000 metering gaps "
          f"in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=25)
    options = parser.parse_args()
    print(f"== load average {os.getloadavg()[0]:.1f}")
    load(options.releases, options.events)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector())
    body, timings, floor = b"", [], []
    for _ in range(options.runs):
        started = time.perf_counter()
        body = generate_latest(registry)
        timings.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        sql("SELECT count(*) FROM workflows_release")
        floor.append((time.perf_counter() - started) * 1000)
    median, base = statistics.median(timings), statistics.median(floor)
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    print(f"== state exposition: median {median:.1f} ms over {options.runs} runs ({series} series, "
          f"5 queries), ceiling {CEILING_MS:.0f} ms: ratio {median / CEILING_MS:.2f}")
    print(f"== floor (count(*) of the releases): median {base:.1f} ms; exposition / floor {median / base:.1f}")
    print(f"== load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
