"""Liveness probe of a Celery worker: exit 0 when its heartbeat file is fresh (see paas_site.worker)."""
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Exit 0 when the worker's heartbeat file was touched recently, 1 otherwise (a Kubernetes exec probe)."

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, help="Heartbeat file (default: SLIPWAY_WORKER_HEARTBEAT_FILE).")
        parser.add_argument("--max-age", type=float,
                            help="Oldest acceptable heartbeat in seconds (default: 3 × SLIPWAY_WORKER_HEARTBEAT_SECONDS).")

    def handle(self, *args, file, max_age, **options):
        path = file or Path(settings.SLIPWAY_WORKER_HEARTBEAT_FILE)
        limit = max_age if max_age is not None else 3 * settings.SLIPWAY_WORKER_HEARTBEAT_SECONDS
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            raise CommandError(f"worker not alive: no heartbeat file {path} (not started, or stopped)") from None
        if age > limit:
            raise CommandError(f"worker not alive: heartbeat {path} is {age:.0f}s old (limit {limit:.0f}s)")
        self.stdout.write(f"worker alive: heartbeat {age:.1f}s old")
