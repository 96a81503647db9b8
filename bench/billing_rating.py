"""Benchmark: rate N usage samples into cost records, then a monthly report across many projects.

Run by hand against a throw-away PostgreSQL database whose name contains "bench"
(it is created if missing, then migrated and its billing/deployments tables are
emptied), never in CI::

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/slipway_bench \\
        .venv/bin/python bench/billing_rating.py --samples 10000000 --projects 1000

The data set: ``--projects`` projects with 3 applications each, one cluster,
two environments. ``bench-stable`` has one price book for the whole month;
``bench-split``'s price changes on the 16th at 12:00, so that day is rated
into two cost records per application. Applications 1 and 2 of a project run
in bench-stable, application 3 in bench-split; application 1 is exposed.

The N samples are spread evenly over the grid of (application, 5-minute slot)
pairs of the month, ``apps × slots`` pairs (3,000 × 8,928 = 26,784,000 for
October): sample ``g`` (0 ≤ g < N) is pair ``floor(g × pairs / N)``, i.e.
slot ``pair / apps`` and application ``pair % apps``. So exactly N samples
exist, every day and every application is covered, each 5-minute slot holds
about N / slots samples, and samples are stored in time order (as the metering
job writes them). Each sample keeps ``interval_seconds = 300``.
"""
import argparse
import calendar
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas_site.settings")

import django  # noqa: E402

django.setup()

from benchdb import database_prepare, sql  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from billing.models import CostRecord, PriceBook  # noqa: E402
from billing.reports import TOTAL_LABEL, report_csv_rows  # noqa: E402
from billing.selectors import monthly_report  # noqa: E402
from billing.services import cost_records_compute  # noqa: E402
from deployments.choices import FINANCE_GROUP  # noqa: E402
from deployments.models import Application, Cluster, Environment, Project  # noqa: E402

SLOT_SECONDS = 300
APPS_PER_PROJECT = 3
CHUNK = 1_000_000  # samples per INSERT … SELECT, so progress shows and one statement stays bounded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200_000, help="usage samples to load and rate (default 200000)")
    parser.add_argument("--projects", type=int, default=100, help="projects, 3 applications each (default 100)")
    parser.add_argument("--month", default="2026-10", help="month to fill and rate, YYYY-MM (default 2026-10)")
    parser.add_argument("--reuse", action="store_true", help="keep the loaded data if it has the same size")
    parser.add_argument("--no-explain", action="store_true", help="skip EXPLAIN ANALYZE of one day's rating")
    args = parser.parse_args()
    month = datetime.strptime(args.month, "%Y-%m").date()
    days = calendar.monthrange(month.year, month.month)[1]
    apps = args.projects * APPS_PER_PROJECT
    pairs = apps * days * 86400 // SLOT_SECONDS
    if not 0 < args.samples <= pairs:
        sys.exit(f"--samples must be between 1 and {pairs:,} (applications × 5-minute slots of the month).")

    database_prepare()
    results: dict[str, str] = {}

    print(f"== data set: {args.projects:,} projects, {apps:,} applications, 2 environments, "
          f"{args.samples:,} samples over {month:%Y-%m} ({args.samples / pairs:.1%} of the {pairs:,} app×slot pairs)")
    if args.reuse and data_matches(args.projects, args.samples):
        print("   reusing the loaded data set")
        finance_user = get_user_model().objects.get(username="bench-finance")
    else:
        finance_user = load(month=month, days=days, projects=args.projects, samples=args.samples, results=results)

    rate_month(month=month, days=days, samples=args.samples, results=results)
    if not args.no_explain:
        explain_one_day(day=month.replace(day=16))
    report(month=month, user=finance_user, results=results)

    print("\n== summary")
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"   {key:<{width}}  {value}")


# -- database ----------------------------------------------------------------------------


def data_matches(projects: int, samples: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM deployments_project), (SELECT count(*) FROM billing_usagesample)")
        return cursor.fetchone() == (projects, samples) and get_user_model().objects.filter(username="bench-finance").exists()


# -- 1. load -------------------------------------------------------------------------------


def load(*, month: date, days: int, projects: int, samples: int, results: dict[str, str]):
    started = time.perf_counter()
    sql("TRUNCATE billing_costrecord, billing_usagesample, billing_meteringgap, billing_budgetalert, billing_budget, "
        "billing_pricebook, deployments_application, deployments_project, deployments_environment, "
        "deployments_cluster RESTART IDENTITY CASCADE")

    month_start = datetime(month.year, month.month, 1, tzinfo=UTC)
    month_end = month_start + timedelta(days=days)
    split_at = month_start + timedelta(days=15, hours=12)  # the 16th at 12:00
    cluster = Cluster.objects.create(name="bench", api_server="https://bench.invalid", token="bench")
    stable = Environment.objects.create(name="bench-stable", rank=0, cluster=cluster)
    split = Environment.objects.create(name="bench-split", rank=1, cluster=cluster)
    PriceBook.objects.bulk_create([
        PriceBook(name="stable", environment=stable, valid_from=month_start, valid_until=month_end, currency="EUR",
                  cpu_core_hour=Decimal("0.031"), memory_gib_hour=Decimal("0.004"), ingress_hour=Decimal("0.01")),
        PriceBook(name="split, before", environment=split, valid_from=month_start, valid_until=split_at,
                  currency="EUR", cpu_core_hour=Decimal("0.045"), memory_gib_hour=Decimal("0.006"),
                  ingress_hour=Decimal("0.02")),
        PriceBook(name="split, after", environment=split, valid_from=split_at, valid_until=month_end,
                  currency="EUR", cpu_core_hour=Decimal("0.052"), memory_gib_hour=Decimal("0.0065"),
                  ingress_hour=Decimal("0.02")),
    ])
    # 4 × projects reference rows: two batched INSERTs through the ORM keep every model default right.
    Project.objects.bulk_create(
        [Project(slug=f"p{i:05d}", name=f"Project {i}", cost_center=f"CC-{i % 40:02d}") for i in range(projects)],
        batch_size=5000,
    )
    project_ids = list(Project.objects.order_by("id").values_list("id", flat=True))
    Application.objects.bulk_create(
        [Application(project_id=pid, name=f"app-{k}", image="registry.invalid/bench/app", exposed=k == 0)
         for pid in project_ids for k in range(APPS_PER_PROJECT)],
        batch_size=5000,
    )
    finance = Group.objects.get_or_create(name=FINANCE_GROUP)[0]
    user = get_user_model().objects.get_or_create(username="bench-finance")[0]
    user.groups.add(finance)
    sql("DROP TABLE IF EXISTS bench_app")
    sql("""CREATE TEMP TABLE bench_app AS
           SELECT (row_number() OVER (ORDER BY a.id) - 1)::int AS ord, a.id, a.project_id, a.exposed,
                  CASE WHEN a.name = 'app-2' THEN %(split)s ELSE %(stable)s END AS environment_id
             FROM deployments_application a""", {"split": split.id, "stable": stable.id})
    sql("ALTER TABLE bench_app ADD PRIMARY KEY (ord)")
    sql("ANALYZE bench_app")
    reference_seconds = time.perf_counter() - started

    apps = projects * APPS_PER_PROJECT
    pairs = apps * days * 86400 // SLOT_SECONDS
    insert = """
        INSERT INTO billing_usagesample (cluster_id, project_id, environment_id, application_id, sampled_at,
                                         interval_seconds, replicas, cpu_cores, memory_gib, exposed)
        SELECT %(cluster)s, a.project_id, a.environment_id, a.id,
               %(start)s::timestamptz + (q.pair / %(apps)s) * interval '300 seconds',
               300,
               1 + (a.id + q.pair / %(apps)s / 288) %% 3,
               (0.25 * (1 + a.id %% 4)) * (1 + (a.id + q.pair / %(apps)s / 288) %% 3),
               (0.5 * (1 + a.id %% 3)) * (1 + (a.id + q.pair / %(apps)s / 288) %% 3),
               a.exposed
          FROM (SELECT g * %(pairs)s / %(samples)s AS pair FROM generate_series(%(g0)s::bigint, %(g1)s::bigint) g) q
          JOIN bench_app a ON a.ord = (q.pair %% %(apps)s)::int
    """
    # The rows are correct by construction, so the foreign-key triggers (4 look-ups per sample) are skipped for
    # the load only; this needs a superuser, and without one the load just runs slower with the checks.
    try:
        with transaction.atomic():
            sql("SET session_replication_role = replica")
        fk_checks = "off"
    except Exception:  # noqa: BLE001 - not a superuser
        fk_checks = "on"
    load_started = time.perf_counter()
    loaded = 0
    for g0 in range(0, samples, CHUNK):
        g1 = min(g0 + CHUNK, samples) - 1
        with connection.cursor() as cursor:
            cursor.execute(insert, {"cluster": cluster.id, "start": month_start, "apps": apps, "pairs": pairs,
                                    "samples": samples, "g0": g0, "g1": g1})
            loaded += cursor.rowcount
        print(f"   loaded {loaded:>12,} samples  {time.perf_counter() - load_started:8.1f} s", flush=True)
    load_seconds = time.perf_counter() - load_started
    if fk_checks == "off":
        sql("RESET session_replication_role")
    analyze_started = time.perf_counter()
    sql("VACUUM ANALYZE billing_usagesample")
    analyze_seconds = time.perf_counter() - analyze_started
    size = sql("SELECT pg_size_pretty(pg_total_relation_size('billing_usagesample'))")[0][0]
    assert loaded == samples, (loaded, samples)
    rate = f"{samples / load_seconds:,.0f} rows/s, FK triggers {fk_checks}"
    print(f"   reference rows {reference_seconds:.1f} s; samples {load_seconds:.1f} s ({rate}); "
          f"VACUUM ANALYZE {analyze_seconds:.1f} s; table+indexes {size}")
    results["load samples"] = f"{samples:,} rows in {load_seconds:.1f} s ({rate}), {size}"
    results["vacuum analyze"] = f"{analyze_seconds:.1f} s"
    return user


# -- 2. rate -------------------------------------------------------------------------------


def rate_month(*, month: date, days: int, samples: int, results: dict[str, str]) -> None:
    print(f"\n== rating {days} days with cost_records_compute(day=…)")
    statements_per_day = set()
    started = time.perf_counter()
    for number in range(1, days + 1):
        with CaptureQueriesContext(connection) as queries:
            cost_records_compute(day=month.replace(day=number))
        statements_per_day.add(sum(1 for q in queries.captured_queries if "INSERT INTO" in q["sql"]))
    seconds = time.perf_counter() - started
    rows, rated, amount = day_totals(month, month.replace(day=days))
    print(f"   {rated:,} samples rated into {rows:,} cost rows in {seconds:.2f} s = {rated / seconds:,.0f} samples/s "
          f"({seconds / days:.2f} s/day); INSERT statements per day: {sorted(statements_per_day)}")
    if rated != samples:
        print(f"   MISMATCH: {samples:,} samples loaded but {rated:,} rated")

    # The I/O floor: one plain scan of the same rows (second run, warm cache), with and without parallel workers.
    scan = {}
    for workers in (2, 0):
        sql(f"SET max_parallel_workers_per_gather = {workers}")
        for _ in range(2):
            scan_started = time.perf_counter()
            count, _cores = sql("SELECT count(*), sum(cpu_cores) FROM billing_usagesample")[0]
            scan[workers] = time.perf_counter() - scan_started
    sql("RESET max_parallel_workers_per_gather")
    print(f"   floor: SELECT count(*), sum(cpu_cores) over {count:,} rows: {scan[2]:.2f} s (parallel, default), "
          f"{scan[0]:.2f} s (1 process); rating ÷ scan = {seconds / scan[2]:.1f}× / {seconds / scan[0]:.1f}×")

    day = month.replace(day=16)
    before = day_totals(day, day)
    again_started = time.perf_counter()
    cost_records_compute(day=day)
    again = time.perf_counter() - again_started
    after = day_totals(day, day)
    verdict = "OK" if before == after else f"DIFFERENT: {before} → {after}"
    print(f"   re-rate {day}: {after[0]:,} rows, {after[1]:,} samples, sum {after[2]} in {again:.2f} s — "
          f"idempotent {verdict}")

    results["rate month"] = (f"{rated:,} samples → {rows:,} rows in {seconds:.2f} s ({rated / seconds:,.0f} samples/s), "
                             f"{sorted(statements_per_day)} INSERT/day")
    results["scan floor"] = f"{scan[2]:.2f} s parallel / {scan[0]:.2f} s 1 process"
    results["rating ÷ scan"] = f"{seconds / scan[2]:.1f}× / {seconds / scan[0]:.1f}×"
    results["re-rate one day"] = f"{again:.2f} s, idempotent {verdict}"


def day_totals(first: date, last: date) -> tuple[int, int, Decimal]:
    rows, rated, amount = sql(
        "SELECT count(*), coalesce(sum(samples), 0), coalesce(sum(amount), 0) FROM billing_costrecord "
        "WHERE day BETWEEN %s AND %s", [first, last],
    )[0]
    return rows, rated, amount


def explain_one_day(*, day: date) -> None:
    """EXPLAIN ANALYZE the day's INSERT … SELECT inside a transaction that is rolled back."""
    with CaptureQueriesContext(connection) as queries:
        cost_records_compute(day=day)
    statement = next(q["sql"] for q in queries.captured_queries if "INSERT INTO" in q["sql"])
    with transaction.atomic():
        sql("DELETE FROM billing_costrecord WHERE day = %s", [day])
        plan = sql("EXPLAIN (ANALYZE, BUFFERS) " + statement)
        transaction.set_rollback(True)
    print(f"\n== EXPLAIN (ANALYZE, BUFFERS) of the rating of {day}")
    for (line,) in plan:
        print(f"   {line}")


# -- 3. report -----------------------------------------------------------------------------


def report(*, month: date, user, results: dict[str, str]) -> None:
    print(f"\n== monthly_report(user=finance, month={month}) across {Project.objects.count():,} projects")
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        result = monthly_report(user=user, month=month)
    report_seconds = time.perf_counter() - started
    lines = [app for line in result.projects for env in line.environments for app in env.applications]
    exact = CostRecord.objects.filter(day__gte=month, day__lte=result.end).values_list("amount", flat=True)
    exact_total = sum(exact, Decimal(0)).quantize(Decimal("0.01"))
    adds_up = (
        sum((app.amount for app in lines), Decimal(0)) == result.amount
        and all(line.amount == sum((env.amount for env in line.environments), Decimal(0)) for line in result.projects)
        and result.amount == exact_total
    )
    print(f"   {report_seconds:.2f} s, {len(queries.captured_queries)} queries, {len(result.projects):,} projects, "
          f"{len(lines):,} application lines, total {result.amount} {result.currency} — adds up "
          f"{'OK' if adds_up else 'NOT OK (exact total ' + str(exact_total) + ')'}")

    started = time.perf_counter()
    rows = report_csv_rows(result)
    csv_seconds = time.perf_counter() - started
    body = [row for row in rows[1:] if row[2] != TOTAL_LABEL]
    total_row = rows[-1]
    csv_ok = total_row[2] == TOTAL_LABEL and sum((Decimal(row[8]) for row in body), Decimal(0)) == Decimal(total_row[8])
    print(f"   CSV (report_csv_rows): {csv_seconds:.3f} s, {len(rows):,} rows ({len(body):,} lines + header + total) "
          f"— adds up {'OK' if csv_ok else 'NOT OK'}")
    results["monthly report"] = (f"{report_seconds:.2f} s, {len(queries.captured_queries)} queries, "
                                 f"{len(lines):,} lines, adds up {'OK' if adds_up else 'NOT OK'}")
    results["CSV rows"] = f"{csv_seconds:.3f} s, {len(rows):,} rows, adds up {'OK' if csv_ok else 'NOT OK'}"


if __name__ == "__main__":
    main()
