"""Benchmark: release pipeline throughput, against the same number of no-op Celery tasks chained the same way.

Run by hand against a throw-away PostgreSQL database whose name contains
"bench" (created if missing, migrated, then FLUSHED: every table is emptied)
and a Redis database of its own (FLUSHDB), never in CI::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/slipway_bench_pipeline \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/8 .venv/bin/python bench/pipeline_throughput.py

What runs: the sandbox cluster in a subprocess (rollout delay 0), a zone on
the ``local`` DNS provider, N applications (exposed, so each release also
publishes a DNS name) in one environment that needs 0 approvals, and two
Celery worker processes (``--pool prefork --concurrency 1`` each: two
processes that run tasks, as two worker containers would) on the Redis broker.
Each release is filed through ``release_file`` with a digest-pinned image, so
the build step makes no registry call; the policy approves it in the same
transaction. The script waits until every release has succeeded.

Then the ceiling: N chains of a no-op task, each link enqueueing the next from
inside the task (as a step does), with as many links per chain as the pipeline
ran tasks per release (counted from the workers' logs), on the same broker and
workers.

Django runs with DEBUG off in every process (as in production: DEBUG keeps
every SQL query in memory). ``--profile DIR`` profiles each pipeline task in
the workers with pyinstrument and writes one report per worker process to DIR.
"""
import argparse
import hashlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchdb import database_prepare, free_port, production_like_environment, wait_for_port  # noqa: E402

production_like_environment()
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/8")

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from celery import shared_task, signals  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import F  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from paas_site.celery import app  # noqa: E402

DONE_KEY = "bench:chains_done"
STATEMENTS_KEY = "bench:statements"
BROKER = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])


@shared_task(name="bench.noop_link", acks_late=True)
def noop_link(started: float, remaining: int) -> None:
    """One link of a ceiling chain: enqueue the next, or record the chain's start and end."""
    if remaining > 1:
        noop_link.delay(started, remaining - 1)
    else:
        BROKER.rpush(DONE_KEY, json.dumps([started, time.time()]))


# -- worker mode: `pipeline_throughput.py --worker NAME` ---------------------------------
def worker_main(name: str, logfile: str) -> None:
    count_statements()
    if profile_dir := os.environ.get("BENCH_PROFILE_DIR"):
        profile_pipeline_tasks(Path(profile_dir), name)
    app.worker_main(["worker", "--pool=prefork", "--concurrency=1", f"--hostname={name}@%h",
                     "--loglevel=INFO", f"--logfile={logfile}"])


def count_statements() -> None:
    """Count the SQL statements of each task in the pool process; hand the totals over in Redis at its exit."""
    from django.db.backends.signals import connection_created

    counts: Counter = Counter()
    current = {"task": ""}

    def counting(execute, sql, params, many, context):
        counts[current["task"]] += 1
        return execute(sql, params, many, context)

    def wrap(connection=None, **kwargs):
        if counting not in connection.execute_wrappers:  # the wrapper object outlives its connections
            connection.execute_wrappers.append(counting)

    connection_created.connect(wrap, weak=False)

    @signals.task_prerun.connect(weak=False)
    def started(task=None, **kwargs):
        current["task"] = task.name
        counts[f"{task.name} (tasks)"] += 1

    @signals.worker_process_shutdown.connect(weak=False)
    def hand_over(**kwargs):
        if counts:
            for key, value in counts.items():
                BROKER.hincrby(STATEMENTS_KEY, key, value)


def profile_pipeline_tasks(directory: Path, name: str) -> None:
    """Sample every ``workflows.*`` task (wall clock, waits included) into one pyinstrument session per process."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)

    @signals.task_prerun.connect(weak=False)
    def start(task=None, **kwargs):
        if task.name.startswith("workflows."):
            profiler.start()

    @signals.task_postrun.connect(weak=False)
    def stop(task=None, **kwargs):
        if profiler.is_running:
            profiler.stop()

    @signals.worker_process_shutdown.connect(weak=False)
    def write(**kwargs):
        if profiler.last_session:  # re-render with `pyinstrument --load=FILE.pyisession [-r html|--show-all]`
            path = directory / f"{name}-{os.getpid()}"
            profiler.last_session.save(path.with_suffix(".pyisession"))
            path.with_suffix(".txt").write_text(profiler.output_text(unicode=True))


# -- the benchmark -----------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=200, help="releases (one application each), default 200")
    parser.add_argument("--profile", metavar="DIR", help="profile the pipeline tasks in the workers into DIR")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the no-op chains")
    parser.add_argument("--worker", metavar="NAME", help=argparse.SUPPRESS)
    parser.add_argument("--logfile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args.worker, args.logfile)

    database_prepare()
    BROKER.flushdb()  # the benchmark's own Redis database: leftover messages would distort both runs
    logs = Path(tempfile.mkdtemp(prefix="slipway-bench-"))
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    print(f"== {args.releases} releases, 2 Celery workers (prefork, concurrency 1 each), "
          f"broker {os.environ['CELERY_BROKER_URL']}; logs in {logs}")
    load = os.getloadavg()
    print(f"   load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    with subprocess_group() as processes:
        sandbox_url = sandbox_start(processes, logs)
        user, environment, applications = data_set(args.releases, sandbox_url)
        workers = workers_start(processes, logs, args.profile)
        pipeline = run_pipeline(user, environment, applications)
        workers_wait_idle()  # the lane_advance after each last step may still run
        tasks = tasks_run(logs)
        links = round(sum(tasks.values()) / args.releases)
        print(f"   tasks run: {dict(tasks)} = {links} per release")
        if not args.no_ceiling:
            ceiling = run_ceiling(args.releases, links)
        workers_stop(workers)
    statements = {k.decode(): int(v) for k, v in BROKER.hgetall(STATEMENTS_KEY).items()}
    per_release = statements_per_release(statements, args.releases)

    print("\n== summary")
    print(f"   pipeline: {args.releases} releases in {pipeline['wall']:.2f} s = {pipeline['per_minute']:.0f} releases/min; "
          f"median platform time {pipeline['median']:.2f} s (finished_at − approved_at)")
    print(f"   SQL statements per release: {per_release}")
    if not args.no_ceiling:
        print(f"   ceiling:  {args.releases} chains × {links} no-op links in {ceiling['wall']:.2f} s = "
              f"{60 * args.releases / ceiling['wall']:.0f} chains/min; median chain time {ceiling['median']:.2f} s")
        print(f"   pipeline ÷ ceiling: {pipeline['wall'] / ceiling['wall']:.1f}× (wall), "
              f"{pipeline['median'] / ceiling['median']:.1f}× (median per release)")
    load = os.getloadavg()
    print(f"   load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


class subprocess_group:
    """Start child processes and stop them all on the way out, whatever happened."""

    def __enter__(self) -> list[subprocess.Popen]:
        self.processes: list[subprocess.Popen] = []
        return self.processes

    def __exit__(self, *exc) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def sandbox_start(processes: list, logs: Path) -> str:
    port = free_port()
    processes.append(subprocess.Popen(
        [sys.executable, "-m", "deployments.sandbox", "--port", str(port), "--rollout-delay", "0",
         "--token", "bench-token"],
        cwd=Path(__file__).resolve().parent.parent, stdout=(logs / "sandbox.log").open("w"), stderr=subprocess.STDOUT,
    ))
    wait_for_port(port, f"the sandbox cluster (see {logs / 'sandbox.log'})")
    return f"http://127.0.0.1:{port}"


def data_set(count: int, sandbox_url: str):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from deployments.choices import Role
    from deployments.models import Application, Cluster, Environment, Project, ProjectMembership
    from dns.models import EnvironmentZone, Zone

    call_command("flush", interactive=False, verbosity=0)
    user = get_user_model().objects.create_user("bench-dev")
    cluster = Cluster.objects.create(name="bench", api_server=sandbox_url, token="bench-token",
                                     ingress_address="127.0.0.10")
    environment = Environment.objects.create(name="bench", cluster=cluster, required_approvals=0,
                                             rollout_deadline_seconds=60)
    zone = Zone.objects.create(name="bench.slipway.internal.", provider="local", default_ttl=60)
    EnvironmentZone.objects.create(environment=environment, zone=zone)
    projects = Project.objects.bulk_create([Project(slug=f"bench-{p}", name=f"Bench {p}") for p in range(10)])
    ProjectMembership.objects.bulk_create([ProjectMembership(project=p, user=user, role=Role.DEVELOPER)
                                           for p in projects])
    applications = Application.objects.bulk_create([
        Application(project=projects[i % len(projects)], name=f"app-{i:04d}", image=f"registry.example.com/bench/app-{i:04d}",
                    health_path="/healthz", exposed=True)
        for i in range(count)
    ])
    return user, environment, applications


def workers_start(processes: list, logs: Path, profile: str | None) -> list[subprocess.Popen]:
    env = {**os.environ, **({"BENCH_PROFILE_DIR": str(Path(profile).resolve())} if profile else {})}
    workers = []
    for n in (1, 2):
        workers.append(subprocess.Popen(
            [sys.executable, __file__, "--worker", f"bench{n}", "--logfile", str(logs / f"worker{n}.log")],
            env=env, stdout=(logs / f"worker{n}.out").open("w"), stderr=subprocess.STDOUT,
        ))
    processes.extend(workers)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=0.5)) == len(workers):
            return workers
        if any(w.poll() is not None for w in workers):
            break
    sys.exit(f"the Celery workers did not start; see {logs}")


def workers_wait_idle() -> None:
    idle_checks = 0
    while idle_checks < 2:
        active = app.control.inspect(timeout=0.5).active() or {}
        busy = BROKER.llen(app.conf.task_default_queue) or any(active.values())
        idle_checks = 0 if busy else idle_checks + 1
        time.sleep(0.2)


def workers_stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: the pool's processes write their profiles
    for worker in workers:
        worker.wait(timeout=300)


def statements_per_release(statements: dict[str, int], releases: int) -> str:
    pipeline = {k: v for k, v in statements.items() if k.startswith("workflows.")}
    parts = [f"{pipeline[name] / pipeline[f'{name} (tasks)']:.1f} per {name} task"
             for name in sorted(pipeline) if not name.endswith("(tasks)")]
    total = sum(v for k, v in pipeline.items() if not k.endswith("(tasks)"))
    return f"{total / releases:.1f} in the workers ({', '.join(parts)})"


def tasks_run(logs: Path) -> Counter:
    pattern = re.compile(r"Task ([\w.]+)\[[^\]]+\] succeeded")
    return Counter(m[1] for n in (1, 2) for m in pattern.finditer((logs / f"worker{n}.log").read_text()))


def run_pipeline(user, environment, applications) -> dict[str, float]:
    from workflows.choices import ReleaseState
    from workflows.models import Release, StepRun
    from workflows.services import release_file

    print(f"\n== pipeline: filing {len(applications)} releases")
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as filing:
        for application in applications:
            release_file(actor=user, application=application, environment=environment, version="1.0",
                         image=f"{application.image}:1.0@sha256:{hashlib.sha256(application.name.encode()).hexdigest()}")
    print(f"   filed in {time.perf_counter() - started:.2f} s, {len(filing) / len(applications):.1f} SQL statements each")
    finished = {ReleaseState.SUCCEEDED, ReleaseState.FAILED, ReleaseState.ROLLED_BACK, ReleaseState.REJECTED}
    deadline = time.monotonic() + 600
    while Release.objects.exclude(state__in=finished).exists():
        if time.monotonic() > deadline:
            sys.exit(f"releases still in flight after 600 s: {Counter(Release.objects.values_list('state', flat=True))}")
        time.sleep(0.1)
    states = Counter(Release.objects.values_list("state", flat=True))
    if states != {ReleaseState.SUCCEEDED: len(applications)}:
        failed = Release.objects.exclude(state=ReleaseState.SUCCEEDED).values_list("failure_reason", flat=True)[:3]
        sys.exit(f"not every release succeeded: {dict(states)}; e.g. {list(failed)}")

    times = Release.objects.values_list("created_at", "approved_at", "finished_at")
    wall = (max(t[2] for t in times) - min(t[0] for t in times)).total_seconds()
    platform = [(t[2] - t[1]).total_seconds() for t in times]
    print(f"   {len(times)} succeeded; first filed → last succeeded {wall:.2f} s = {60 * len(times) / wall:.0f} releases/min")
    print(f"   platform time per release (finished_at − approved_at): median {statistics.median(platform):.2f} s, "
          f"min {min(platform):.2f} s, max {max(platform):.2f} s")
    steps = StepRun.objects.annotate(took=F("finished_at") - F("started_at")).values_list("step", "took")
    by_step: dict[str, list[float]] = {}
    for step, took in steps:
        by_step.setdefault(step, []).append(took.total_seconds() * 1000)
    print("   inside the steps (StepRun started_at → finished_at, work only): " + ", ".join(
        f"{step} median {statistics.median(ms):.0f} ms" for step, ms in by_step.items()))
    return {"wall": wall, "per_minute": 60 * len(times) / wall, "median": statistics.median(platform)}


def run_ceiling(chains: int, links: int) -> dict[str, float]:
    print(f"\n== ceiling: {chains} chains of {links} no-op tasks")
    for _ in range(chains):
        noop_link.delay(time.time(), links)
    deadline = time.monotonic() + 600
    while BROKER.llen(DONE_KEY) < chains:
        if time.monotonic() > deadline:
            sys.exit(f"only {BROKER.llen(DONE_KEY)} of {chains} chains finished after 600 s")
        time.sleep(0.05)
    spans = [json.loads(item) for item in BROKER.lrange(DONE_KEY, 0, -1)]
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    median = statistics.median(end - start for start, end in spans)
    print(f"   first sent → last done {wall:.2f} s; median chain time {median:.2f} s")
    return {"wall": wall, "median": median}


if __name__ == "__main__":
    main()
