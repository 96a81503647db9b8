"""``manage.py base_images_seed [--registry HOST]``: push small real base images and point the catalog at them."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from deployments.services import base_images_seed
from paas_site.actors import BASE_IMAGES_SEED
from paas_site.errors import ExternalError


class Command(BaseCommand):
    help = ("Build small but real base images locally (OCI layers), push them to the registry "
            "(default: SLIPWAY_REGISTRY) and point the base-image catalog at them. Running it again changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--registry", default="", help="registry host[:port]; default: SLIPWAY_REGISTRY")

    def handle(self, *args, registry: str = "", **options):
        registry = registry or settings.SLIPWAY_REGISTRY
        if not registry:
            raise CommandError("No registry: set SLIPWAY_REGISTRY or pass --registry HOST[:PORT].")
        try:
            seeded = base_images_seed(registry=registry, actor=BASE_IMAGES_SEED)
        except ExternalError as exc:
            raise CommandError(exc.message) from None
        for base, digest, changed in seeded:
            note = "catalog updated" if changed else "catalog unchanged"
            self.stdout.write(f"{base.name}: {base.image} {digest} ({note})")
