"""File one sample release to dev and follow it (the demo's proof of life)."""
import time
import urllib.request

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from deployments.models import Application, Environment
from workflows import services

SAMPLE_IMAGE = "registry.example.com/shop/api:1.0.0@sha256:" + "5" * 64


class Command(BaseCommand):
    help = "File a sample release of shop/api to dev and wait until it finishes."

    def add_arguments(self, parser):
        parser.add_argument("--sandbox-url", default="http://127.0.0.1:6443")
        parser.add_argument("--timeout", type=float, default=120)

    def handle(self, *args, sandbox_url, timeout, **options):
        try:
            wait_for_http(f"{sandbox_url}/version", timeout=timeout)
        except OSError:
            raise CommandError(f"sandbox cluster at {sandbox_url} did not come up") from None
        release = services.release_file(
            actor=get_user_model().objects.get(username="dev"), application=Application.objects.get(
                project__slug="shop", name="api"), environment=Environment.objects.get(name="dev"),
            version="1.0.0", image=SAMPLE_IMAGE, description="Sample release filed by the demo", via="demo",
        )
        self.stdout.write(f"Filed sample release #{release.id} (shop/api 1.0.0 → dev)")
        # the timeline until it ends; raises CommandError unless it succeeded
        call_command("release_follow", release.id, interval=0.5, timeout=timeout, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(f"Sample release #{release.id} succeeded."))


def wait_for_http(url: str, *, timeout: float) -> None:
    """Until ``url`` answers at all (any HTTP status means the server is up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 (a loopback URL of our own)
            return
        except OSError as exc:
            if getattr(exc, "code", None):
                return
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
