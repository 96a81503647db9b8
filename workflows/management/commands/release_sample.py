"""File one sample release to dev and follow it (the demo's proof of life)."""
import time
import urllib.request

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from deployments.models import Application, Environment
from workflows import services
from workflows.choices import FINAL
from workflows.models import Release

SAMPLE_IMAGE = "registry.example.com/shop/api:1.0.0@sha256:" + "5" * 64


class Command(BaseCommand):
    help = "File a sample release of shop/api to dev and wait until it finishes."

    def add_arguments(self, parser):
        parser.add_argument("--sandbox-url", default="http://127.0.0.1:6443")
        parser.add_argument("--timeout", type=float, default=120)

    def handle(self, *args, sandbox_url, timeout, **options):
        self.wait_for(f"{sandbox_url}/version", timeout)
        release = services.release_file(
            actor=get_user_model().objects.get(username="dev"), application=Application.objects.get(
                project__slug="shop", name="api"), environment=Environment.objects.get(name="dev"),
            version="1.0.0", image=SAMPLE_IMAGE, description="Sample release filed by the demo", via="demo",
        )
        self.stdout.write(f"Filed sample release #{release.id} (shop/api 1.0.0 → dev)")
        deadline, seen = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            release = Release.objects.get(id=release.id)
            if release.state != seen:
                self.stdout.write(f"  release #{release.id}: {release.state}")
                seen = release.state
            if release.state in FINAL:
                break
            time.sleep(0.5)
        if release.state != "succeeded":
            raise CommandError(f"sample release ended {release.state}: {release.failure_reason or 'timed out'}")
        self.stdout.write(self.style.SUCCESS(f"Sample release #{release.id} succeeded."))

    def wait_for(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2)  # noqa: S310 (loopback sandbox URL)
                return
            except OSError as exc:
                if getattr(exc, "code", None):  # any HTTP answer means it is up
                    return
                time.sleep(0.5)
        raise CommandError(f"sandbox cluster at {url} did not come up")
