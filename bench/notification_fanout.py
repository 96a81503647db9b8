"""Benchmark: one release awaiting approval, fanned out to N approvers and mailed to a real SMTP server;
against the ceiling of sending the same N messages with bare ``smtplib`` (one connection each, as the
delivery does).

Run by hand against a throw-away PostgreSQL database whose name contains "bench" (created if missing,
migrated, then FLUSHED) and a Redis database of its own (the filing enqueues a fan-out task there; the
database is FLUSHDB'd), never in CI::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/slipway_bench_notify \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/notification_fanout.py --approvers 200

What runs: aiosmtpd on loopback (the relay), the release filed through ``release_file``, then in this
process what the workers do: ``notification_fanout`` (who may decide, their preferences, the delivery rows)
and ``notification_deliver`` for each email (locks the row, renders text + HTML, sends through the guarded
SMTP backend, records the attempt). Printed: fan-out ms, deliveries/s, the ceiling's messages/s, the ratio.
"""
import argparse
import os
import smtplib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchdb import database_prepare, free_port, production_like_environment  # noqa: E402

production_like_environment()
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("SLIPWAY_OUTBOUND_ALLOW", "127.0.0.0/8")
os.environ.setdefault("SLIPWAY_REGISTRIES", "registry.example.com")
SMTP_PORT = free_port()
os.environ["SLIPWAY_EMAIL_HOST"], os.environ["SLIPWAY_EMAIL_PORT"] = "127.0.0.1", str(SMTP_PORT)

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from deployments.models import Application, Cluster, Environment, Project, ProjectMembership  # noqa: E402
from workflows import services  # noqa: E402
from workflows.models import Notification, NotificationDelivery  # noqa: E402
from workflows.services import notifications  # noqa: E402

User = get_user_model()


class Count:
    received = 0

    async def handle_DATA(self, server, session, envelope):
        Count.received += 1
        return "250 OK"


def world(approvers: int):
    project = Project.objects.create(slug="bench", name="Bench")
    cluster = Cluster.objects.create(name="bench", api_server="https://127.0.0.1:9", token="t")
    prod = Environment.objects.create(name="prod", cluster=cluster, required_approvals=2)
    application = Application.objects.create(project=project, name="web", image="registry.example.com/bench/web")
    developer = User.objects.create(username="dev", email="dev@example.com")
    ProjectMembership.objects.create(project=project, user=developer, role="developer")
    users = User.objects.bulk_create([User(username=f"approver{n}", email=f"approver{n}@example.com")
                                      for n in range(approvers)])
    ProjectMembership.objects.bulk_create([ProjectMembership(project=project, user=user, role="approver")
                                           for user in users])
    return developer, application, prod


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--approvers", type=int, default=200)
    args = parser.parse_args()
    database_prepare()
    call_command("flush", interactive=False, verbosity=0)
    controller = Controller(Count(), hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    print(f"== load average before: {os.getloadavg()}")
    try:
        developer, application, prod = world(args.approvers)
        release = services.release_file(actor=developer, application=application, environment=prod, version="1.0",
                                         image="registry.example.com/bench/web:1.0@sha256:" + "a" * 64)
        notification = Notification.objects.get(release=release)

        started = time.perf_counter()
        pending = notifications.notification_fanout(notification_id=notification.id)
        fanout = time.perf_counter() - started
        started = time.perf_counter()
        for delivery_id in pending:
            notifications.notification_deliver(delivery_id=delivery_id)
        ours = time.perf_counter() - started
        assert Count.received == len(pending) == args.approvers, (Count.received, len(pending))
        assert not NotificationDelivery.objects.exclude(status="delivered").exists()

        body = b"Subject: Approval needed\r\nFrom: slipway@localhost\r\n\r\n" + (b"x" * 70 + b"\r\n") * 25  # ~2 kB, as ours
        started = time.perf_counter()
        for n in range(args.approvers):
            with smtplib.SMTP("127.0.0.1", SMTP_PORT) as smtp:
                smtp.sendmail("slipway@localhost", [f"approver{n}@example.com"], body)
        ceiling = time.perf_counter() - started
    finally:
        controller.stop()
        redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()
    print(f"== load average after: {os.getloadavg()}")
    print(f"fan-out of 1 event to {args.approvers} approvers: {fanout * 1000:.0f} ms "
          f"({fanout * 1000 / args.approvers:.2f} ms per recipient)")
    print(f"deliveries (email, rendered, guarded, recorded): {args.approvers / ours:.0f}/s")
    print(f"ceiling, bare smtplib to the same server: {args.approvers / ceiling:.0f}/s")
    print(f"ratio ours / ceiling: {ceiling / ours:.2f} (1.00 = as fast as bare smtplib)")


if __name__ == "__main__":
    main()
