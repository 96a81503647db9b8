"""Benchmark: time to recovery after a worker SIGKILL, with the old fixed step lease and with heartbeat leases.

Run by hand against a throw-away PostgreSQL database whose name contains "bench" (created if missing,
migrated, then FLUSHED) and a broker queue of its own (``bench-recovery``, purged) on Redis or RabbitMQ, never
in CI::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/slipway_bench_recovery \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/8 .venv/bin/python bench/recovery.py [--scenario after] [--releases 6]

What runs: the sandbox cluster in a subprocess (each rollout takes ``--rollout`` seconds, so every release is
inside its verify step when the worker dies), ``--releases`` applications in one environment, and a Celery
worker process (threads pool, one thread per release) on the broker. Once every release is verifying, the
worker's process group gets SIGKILL and a new worker starts; this process plays the beat, running the reaper
every ``SLIPWAY_REAPER_SECONDS`` as ``celery beat`` would. Measured from the kill, per release: when the step
was re-driven (the new attempt's ``started_at``) and when the release succeeded (``finished_at``).

Scenarios: ``before`` is the old configuration (a 300 s lease, the reaper every 30 s), ``after`` the heartbeat
leases (15 s lease renewed every 5 s, the reaper every 5 s). The **ceiling** it is compared with is what the
design allows: a dead worker's lease runs out at most one lease after its last heartbeat, the reaper notices
within one period, so recovery (kill → re-driven) ≤ lease + reaper period; ``ratio`` = measured ÷ that ceiling.
A calm run (no kill) of the same releases gives the time the work itself takes.
"""
import argparse
import hashlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchdb import database_prepare, free_port, production_like_environment, wait_for_port  # noqa: E402

production_like_environment()
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/8")
os.environ.setdefault("CELERY_TASK_DEFAULT_QUEUE", "bench-recovery")  # apart from any test run's workers
os.environ.setdefault("SLIPWAY_REGISTRIES", "registry.example.com")  # digest-pinned images: never fetched
os.environ.setdefault("SLIPWAY_OUTBOUND_ALLOW", "127.0.0.0/8")  # the sandbox cluster on loopback

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {  # lease seconds, heartbeat seconds, reaper period
    "before": (300, 5, 30),
    "after": (15, 5, 5),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=[*SCENARIOS, "both"], default="both")
    parser.add_argument("--releases", type=int, default=6)
    parser.add_argument("--rollout", type=float, default=4.0, help="seconds each rollout takes (default 4)")
    args = parser.parse_args()
    database_prepare()
    from paas_site.celery import app

    app.control.purge()  # the benchmark's own broker: what an earlier run left would start early
    logs = Path(tempfile.mkdtemp(prefix="slipway-bench-recovery-"))
    print(f"== {args.releases} releases, broker {settings.CELERY_BROKER_URL.split('@')[-1]}, rollouts of "
          f"{args.rollout:g} s; logs in {logs}")
    print(f"   load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sandbox_port = free_port()
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "deployments.sandbox", "--port", str(sandbox_port), "--rollout-delay",
         str(args.rollout), "--token", "bench-token"], cwd=ROOT, stdout=(logs / "sandbox.log").open("w"),
        stderr=subprocess.STDOUT)
    try:
        wait_for_port(sandbox_port, "the sandbox cluster")
        results = {}
        for name in (SCENARIOS if args.scenario == "both" else [args.scenario]):
            lease, heartbeat, reaper = SCENARIOS[name]
            results[name] = run(name, lease, heartbeat, reaper, args.releases, f"http://127.0.0.1:{sandbox_port}", logs)
    finally:
        sandbox.terminate()
        sandbox.wait(30)
    print("\n== summary (seconds after the SIGKILL; ceiling = lease + reaper period)")
    print("| scenario | lease / heartbeat / reaper | calm run | re-driven median / max | ceiling | ratio | "
          "succeeded median / max |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        lease, heartbeat, reaper = SCENARIOS[name]
        ceiling = lease + reaper
        print(f"| {name} | {lease} / {heartbeat} / {reaper} s | {r['calm']:.1f} | {r['redriven_median']:.1f} / "
              f"{r['redriven_max']:.1f} | {ceiling} | {r['redriven_max'] / ceiling:.2f}× | "
              f"{r['done_median']:.1f} / {r['done_max']:.1f} |")
    print(f"   load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def run(name: str, lease: int, heartbeat: int, reaper: int, count: int, sandbox_url: str, logs: Path) -> dict:
    from workflows.models import Release, StepRun
    from workflows.services import pipeline

    print(f"\n== {name}: lease {lease} s, heartbeat {heartbeat} s, reaper every {reaper} s")
    env = {"SLIPWAY_STEP_LEASE_SECONDS": str(lease), "SLIPWAY_STEP_HEARTBEAT_SECONDS": str(heartbeat),
           "SLIPWAY_VERIFY_POLL_SECONDS": "0.2"}
    settings.SLIPWAY_STEP_LEASE_SECONDS = lease

    user, environment, applications = data_set(count, sandbox_url)
    workers: list[subprocess.Popen] = []
    try:
        workers.append(worker_start(logs / f"{name}-calm.log", env, count))
        started = time.monotonic()
        release_all(user, environment, applications, "1.0")
        wait(lambda: Release.objects.filter(state="succeeded").count() == count, 120, "the calm run")
        calm = time.monotonic() - started
        print(f"   calm run: {count} releases in {calm:.1f} s")

        release_all(user, environment, applications, "2.0")
        wait(lambda: StepRun.objects.filter(step="verify", status="running", release__version="2.0").count()
             == count, 60, "every release to be verifying")
        os.killpg(workers[0].pid, signal.SIGKILL)
        workers[0].wait(10)
        killed_at = timezone.now()
        workers.append(worker_start(logs / f"{name}-after-kill.log", env, count))
        last_reap = 0.0
        deadline = time.monotonic() + lease + 4 * reaper + 120
        while Release.objects.filter(version="2.0").exclude(state="succeeded").exists():
            if time.monotonic() > deadline:
                sys.exit(f"{name}: releases not recovered in time; see {logs}")
            if time.monotonic() - last_reap >= reaper:  # the beat's schedule
                pipeline.steps_reap()
                last_reap = time.monotonic()
            time.sleep(0.1)
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
    redriven = [(run.started_at - killed_at).total_seconds()
                for run in StepRun.objects.filter(step="verify", attempt=2, release__version="2.0")]
    done = [(r.finished_at - killed_at).total_seconds() for r in Release.objects.filter(version="2.0")]
    print(f"   after the SIGKILL: re-driven in {statistics.median(redriven):.1f} s median ({max(redriven):.1f} max), "
          f"succeeded in {statistics.median(done):.1f} s median ({max(done):.1f} max)")
    return {"calm": calm, "redriven_median": statistics.median(redriven), "redriven_max": max(redriven),
            "done_median": statistics.median(done), "done_max": max(done)}


def data_set(count: int, sandbox_url: str):
    from django.contrib.auth import get_user_model

    from deployments.choices import Role
    from deployments.models import Application, Cluster, Environment, Project, ProjectMembership

    call_command("flush", interactive=False, verbosity=0)
    user = get_user_model().objects.create_user("bench-dev")
    cluster = Cluster.objects.create(name="bench", api_server=sandbox_url, token="bench-token")
    environment = Environment.objects.create(name="bench", cluster=cluster, required_approvals=0,
                                             rollout_deadline_seconds=120)
    project = Project.objects.create(slug="bench", name="Bench")
    ProjectMembership.objects.create(project=project, user=user, role=Role.DEVELOPER)
    applications = Application.objects.bulk_create([
        Application(project=project, name=f"app-{i:03d}", image=f"registry.example.com/bench/app-{i:03d}")
        for i in range(count)])
    return user, environment, applications


def release_all(user, environment, applications, version: str) -> None:
    from workflows.services import release_file

    for application in applications:
        digest = hashlib.sha256(f"{application.name}:{version}".encode()).hexdigest()
        release_file(actor=user, application=application, environment=environment, version=version,
                     image=f"{application.image}:{version}@sha256:{digest}")


def worker_start(log: Path, env: dict, threads: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "paas_site", "worker", "--pool=threads", f"--concurrency={threads}",
         "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel=INFO",
         f"--hostname=bench-{time.time_ns()}@%h"],
        cwd=ROOT, env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    wait(lambda: "ready." in log.read_text(errors="replace"), 60, f"the worker (see {log})")
    return process


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.1)


if __name__ == "__main__":
    main()
