"""Demo data: users for each role, a project, clusters, environments, applications, DNS zone, prices.

Running it again resets the demo users' passwords and flags, the environments' approval
policies and the clusters' credentials, so it runs only with ``DEBUG`` and records
one audit event per object it creates or changes (and one per password it resets):
an auditor sees which field was reset from what to what, as after an admin edit,
which a single summary event per run could not show. Objects it leaves as they
were get no event.
"""
import secrets
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import models, transaction
from django.utils import timezone

from billing.models import PriceBook
from deployments.choices import FINANCE_GROUP, Role
from deployments.models import Application, BaseImage, Cluster, Environment, Project, ProjectMembership
from dns.models import EnvironmentZone, Zone
from paas_site.actors import SEED_DEMO
from workflows import audit
from workflows.services.directory import approvers_group

ACTOR = SEED_DEMO

DEMO_USERS = [
    # username, role in the demo project, is staff
    ("admin", None, True),
    ("dev", Role.DEVELOPER, False),
    ("approver1", Role.APPROVER, False),
    ("approver2", Role.APPROVER, False),
    ("finance", None, False),
]


def record(obj: models.Model, before: dict[str, Any] | None) -> None:
    """Audit what seeding did to ``obj``: created (``before`` is None), changed, or nothing."""
    if before is None:
        audit.object_created(actor=ACTOR, obj=obj)
    elif audit.snapshot(obj) != before:
        audit.object_changed(actor=ACTOR, obj=obj, before=before)


def upsert(model: type[models.Model], *, defaults: dict[str, Any], **lookup: Any) -> models.Model:
    """``update_or_create`` that audits what it did."""
    existing = model.objects.select_for_update().filter(**lookup).first()
    before = None if existing is None else audit.snapshot(existing)
    obj, _ = model.objects.update_or_create(defaults=defaults, **lookup)
    record(obj, before)
    return obj


def group_named(name: str) -> Group:
    group, created = Group.objects.get_or_create(name=name)
    if created:
        record(group, None)
    return group


class Command(BaseCommand):
    help = "Create (or refresh) demo users, a project, clusters, environments and applications."

    def add_arguments(self, parser):
        parser.add_argument("--sandbox-url", default="http://127.0.0.1:6443", help="API URL of the sandbox cluster.")
        parser.add_argument("--sandbox-token", default="sandbox-token", help="Bearer token the sandbox expects.")
        parser.add_argument("--password", help="Use this password for every demo user instead of random ones.")

    def handle(self, *args, sandbox_url, sandbox_token, password, **options):
        if not settings.DEBUG:  # before anything touches the database
            raise CommandError("seed_demo resets demo passwords, approval policies and cluster credentials: "
                               "it runs only with DEBUG on.")
        with transaction.atomic():
            passwords = self.seed(sandbox_url=sandbox_url, sandbox_token=sandbox_token, password=password)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Logins (user / password / role):"))
        for username, role, staff in DEMO_USERS:
            label = "platform admin" if staff else (role.label.lower() if role else "finance")
            self.stdout.write(f"  {username:10} {passwords[username]:14} {label}")

    def seed(self, *, sandbox_url: str, sandbox_token: str, password: str | None) -> dict[str, str]:
        project = upsert(
            Project, slug="shop", defaults={"name": "Web shop", "cost_center": "CC-4711", "description": "Demo project."}
        )
        passwords = {}
        for username, role, staff in DEMO_USERS:
            user, created = get_user_model().objects.get_or_create(username=username)
            before = None if created else audit.snapshot(user)
            # approvers sign off in the admin: staff (admin access) without platform-wide rights
            user.is_staff = staff or role == Role.APPROVER
            user.is_superuser = staff
            passwords[username] = password or secrets.token_urlsafe(9)
            user.set_password(passwords[username])
            user.email = f"{username}@example.com"
            user.save()
            if role:
                upsert(ProjectMembership, project=project, user=user, defaults={"role": role})
            if username == "finance":
                user.groups.add(group_named(FINANCE_GROUP))
            if role == Role.APPROVER:
                user.groups.add(approvers_group(actor=ACTOR))
            record(user, before)
            audit.password_changed(actor=ACTOR, user=user)

        clusters = {}
        for name, address in (("sandbox", "127.0.0.10"), ("sandbox-prod", "127.0.0.20")):
            clusters[name] = upsert(
                Cluster,
                name=name,
                defaults={
                    "api_server": sandbox_url, "auth_method": "token", "token": sandbox_token,
                    "ingress_address": address, "labels": {"purpose": "demo"},
                },
            )
        zone = upsert(Zone, name="apps.slipway.internal.", defaults={"provider": "local", "default_ttl": 60})
        for rank, (name, cluster, approvals) in enumerate(
            (("dev", "sandbox", 0), ("test", "sandbox", 1), ("prod", "sandbox-prod", 2))
        ):
            environment = upsert(
                Environment,
                name=name,
                defaults={"rank": rank, "cluster": clusters[cluster], "required_approvals": approvals,
                          "rollout_deadline_seconds": 60},
            )
            upsert(
                EnvironmentZone, environment=environment,
                defaults={"zone": zone, "name_pattern": "{application}.{project}.{environment}.{zone}"},
            )
            if not PriceBook.objects.filter(environment=environment).exists():
                record(PriceBook.objects.create(
                    name=f"{name} list prices", environment=environment, currency="EUR",
                    valid_from=timezone.now() - timedelta(days=31), cpu_core_hour=Decimal("0.031"),
                    memory_gib_hour=Decimal("0.004"), ingress_hour=Decimal("0.01"),
                ), None)

        web = upsert(
            Application, project=project, name="web",
            defaults={"base_image": BaseImage.objects.get(name="nginx"), "image": "", "port": 8080,
                      "health_path": "/", "exposed": True},
        )
        existing = Application.objects.filter(project=project, name="api").first()
        before = None if existing is None else audit.snapshot(existing)
        api, _ = Application.objects.update_or_create(
            project=project, name="api",
            defaults={"base_image": None, "image": "registry.example.com/shop/api", "port": 8080,
                      "health_path": "/healthz", "replicas": 2,
                      "autoscaling_min": 2, "autoscaling_max": 5, "autoscaling_target_cpu": 70},
        )
        api.allowed_callers.set([web])
        record(api, before)
        upsert(
            Application, project=project, name="cart",
            defaults={"base_image": BaseImage.objects.get(name="tomcat"), "image": "", "port": 8080,
                      "health_path": "/"},
        )
        return passwords
