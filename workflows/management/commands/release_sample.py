"""File one sample release to dev and follow it (the demo's proof of life).

With a registry (``SLIPWAY_REGISTRY``) it is a release of shop/web built from a package: an uploaded
``index.html`` layered onto the NGINX base image and pushed there; without one, a prebuilt image of
shop/api (pinned by digest).
"""
import time
import urllib.request

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from deployments.models import Application, Environment
from workflows import services

SAMPLE_IMAGE = "registry.example.com/shop/api:1.0.0@sha256:" + "5" * 64
SAMPLE_PAGE = b"<!doctype html><title>shop/web</title><h1>Built by Slipway from a package</h1>\n"


class Command(BaseCommand):
    help = "File a sample release to dev (built from a package when a registry is set) and wait until it finishes."

    def add_arguments(self, parser):
        parser.add_argument("--sandbox-url", default="http://127.0.0.1:6443")
        parser.add_argument("--timeout", type=float, default=120)

    def handle(self, *args, sandbox_url, timeout, **options):
        try:
            wait_for_http(f"{sandbox_url}/version", timeout=timeout)
        except OSError:
            raise CommandError(f"sandbox cluster at {sandbox_url} did not come up") from None
        developer, dev = get_user_model().objects.get(username="dev"), Environment.objects.get(name="dev")
        common = {"actor": developer, "environment": dev, "version": "1.0.0", "via": "demo"}
        if settings.SLIPWAY_REGISTRY:
            web = Application.objects.get(project__slug="shop", name="web")
            release = services.release_file_with_upload(
                application=web, upload=SimpleUploadedFile("index.html", SAMPLE_PAGE), commit="demo",
                description="Sample release filed by the demo: index.html built onto the NGINX base image", **common,
            )
            self.stdout.write(f"Filed sample release #{release.id} (shop/web 1.0.0 → dev): package index.html "
                              f"built onto base image {web.base_image.name}, pushed to {settings.SLIPWAY_REGISTRY}")
        else:
            release = services.release_file(
                application=Application.objects.get(project__slug="shop", name="api"), image=SAMPLE_IMAGE,
                description="Sample release filed by the demo", **common,
            )
            self.stdout.write(f"Filed sample release #{release.id} (shop/api 1.0.0 → dev, prebuilt image)")
        # the timeline until it ends; raises CommandError unless it succeeded
        call_command("release_follow", release.id, interval=0.5, timeout=timeout, stdout=self.stdout)


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
