"""seed_demo resets demo credentials and policies: only with DEBUG, and never off the record."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from deployments.models import Cluster, Environment
from dns.models import Zone
from tests.deployments.factories import base_image
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def seed(**options) -> None:
    base_image("nginx"), base_image("tomcat")
    call_command("seed_demo", password="demo-password", stdout=io.StringIO(), **options)


def events_since(mark: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=mark).order_by("id"))


def test_seed_demo_refuses_without_debug_and_writes_nothing(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="only with DEBUG"):
        seed()

    assert not get_user_model().objects.filter(username="admin").exists()
    assert not AuditEvent.objects.exists()


def test_seed_demo_without_debug_exits_non_zero_with_one_line():
    # a database that does not exist: the refusal comes before anything touches one
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "x" * 50,
           "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/slipway_no_such_database",
           "SLIPWAY_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "SLIPWAY_AUDIT_KEYS": "t1:" + "k" * 40}
    result = subprocess.run([sys.executable, "manage.py", "seed_demo"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "CommandError: seed_demo resets demo passwords, approval policies and cluster credentials: "
        "it runs only with DEBUG on."
    ]


def test_rerunning_seed_demo_audits_what_it_resets(settings):
    # given a seeded demo that someone tightened since
    settings.DEBUG = True
    seed()
    created = AuditEvent.objects.filter(actor="system:seed_demo", action="object.created")
    assert {"deployments.project", "deployments.cluster", "deployments.environment", "auth.user",
            "billing.pricebook"} <= set(created.values_list("target_type", flat=True))
    prod = Environment.objects.get(name="prod")
    Environment.objects.filter(pk=prod.pk).update(required_approvals=5)
    cluster = Cluster.objects.get(name="sandbox-prod")
    cluster.token = "rotated-by-ops"
    cluster.save()
    get_user_model().objects.filter(username="dev").update(is_staff=True)
    mark = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()

    # when seed_demo runs again
    seed()

    # then each reset is an event naming what it reset, from what to what
    events = events_since(mark)
    by_target = {(e.target_type, e.target_repr): e for e in events if e.action == "object.changed" and e.before}
    policy = by_target[("deployments.environment", str(prod))]
    assert (policy.before, policy.after) == ({"required_approvals": 5}, {"required_approvals": 2})
    assert set(by_target[("deployments.cluster", str(cluster))].after) == {"token"}
    dev = by_target[("auth.user", "dev")]
    assert (dev.before, dev.after) == ({"is_staff": True}, {"is_staff": False})
    passwords = [e for e in events if e.after == {"password": "changed"}]
    assert sorted(e.target_repr for e in passwords) == ["admin", "approver1", "approver2", "dev", "finance"]
    assert {e.actor for e in events} == {"system:seed_demo"}
    # what it left as it was gets no event
    assert not [e for e in events if e.target_type == Zone._meta.label_lower]
    # and no event holds a password, its hash or the cluster token
    recorded = json.dumps([[e.before, e.after, e.message] for e in events])
    hashes = get_user_model().objects.values_list("password", flat=True)
    assert "demo-password" not in recorded and "sandbox-token" not in recorded and "rotated-by-ops" not in recorded
    assert not any(h in recorded for h in hashes)
