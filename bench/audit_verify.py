"""Benchmark: verify the audit HMAC chain (1,000,000 events loaded by bench/api_scale.py); events/s.

Run by hand, never in CI, on the data set api_scale.py loaded (it refuses a
database whose name lacks "bench", and changes nothing)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/slipway_benchdata .venv/bin/python bench/audit_verify.py

or on a chain of its own: ``--load N`` replaces the database's audit events
with N fresh ones (a valid chain) and writes one checkpoint, then measures.

It times ``workflows.audit.chain_verify`` (what ``manage.py audit_verify``
runs) as one wall-clock interval and prints events/s, then the floor: the same
rows read with ``values_list`` and nothing else done to them, and the ratio.
"""
import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas_site.settings")
from benchdb import database_prepare, production_like_environment, sql  # noqa: E402

production_like_environment()
os.environ.setdefault("SLIPWAY_AUDIT_CHECKPOINT_DIR", tempfile.mkdtemp(prefix="slipway-bench-checkpoints-"))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from workflows import anchors  # noqa: E402
from workflows.audit import chain_check  # noqa: E402
from workflows.chain import GENESIS_HASH, signing_key_id  # noqa: E402
from workflows.models import AuditChainHead, AuditEvent  # noqa: E402
from workflows.services.checkpoints import audit_checkpoint_write  # noqa: E402

COLUMNS = ["id", "created_at", "actor", "action", "target_type", "target_id", "target_repr", "project_id",
           "release_id", "from_state", "to_state", "message", "correlation_id", "prev_hash", "hash", "key_id"]


def load(count: int) -> None:
    """Replace the audit trail with ``count`` chained events (COPY), and write one checkpoint."""
    database_prepare()
    sql("TRUNCATE workflows_auditevent")
    started, head, key_id = time.perf_counter(), GENESIS_HASH, signing_key_id()
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    with connection.cursor() as cursor, cursor.cursor.copy(
        f"COPY workflows_auditevent ({', '.join(COLUMNS)}) FROM STDIN"
    ) as copy:
        for n in range(1, count + 1):
            event = AuditEvent(
                id=n, created_at=epoch + timedelta(seconds=n), actor="system:worker", action="release.transitioned",
                target_type="workflows.release", target_id=str(n // 10), target_repr=f"release #{n // 10}",
                project_id=n % 100, release_id=n // 10, from_state="deploying", to_state="verifying",
                message=f"release #{n // 10} deploying → verifying", correlation_id="", prev_hash=head, key_id=key_id,
            )
            event.hash = head = event.compute_hash()
            copy.write_row([getattr(event, column) for column in COLUMNS])
    AuditChainHead.objects.update_or_create(id=1, defaults={"last_hash": head})
    sql("ANALYZE workflows_auditevent")
    audit_checkpoint_write()
    print(f"   loaded {count:,} events in {time.perf_counter() - started:.1f} s, one checkpoint written")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load", type=int, default=0, help="replace the trail with N fresh events first")
    options = parser.parse_args()
    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql" or "bench" not in name:
        sys.exit(f"refusing to run on {connection.vendor} database {name!r}: use the one bench/api_scale.py loaded.")
    if options.load:
        load(options.load)
    one, five, fifteen = os.getloadavg()
    print(f"== database {name}; load average {one:.2f} {five:.2f} {fifteen:.2f}")

    started = time.perf_counter()
    records = list(anchors.checkpoints_read(Path(settings.SLIPWAY_AUDIT_CHECKPOINT_DIR))) \
        if Path(settings.SLIPWAY_AUDIT_CHECKPOINT_DIR).exists() else []
    report = chain_check(checkpoints=records)
    took = time.perf_counter() - started
    checked = report.events
    print(f"   chain_check (HMAC links, head, {report.checkpoints} checkpoint(s)): {checked:,} events in {took:.1f} s "
          f"= {checked / took:,.0f} events/s; "
          + ("intact" if report.intact else f"BROKEN: {report.findings[0].message}"))

    started = time.perf_counter()
    rows = sum(1 for _ in AuditEvent.objects.order_by("id").values_list().iterator(chunk_size=5000))
    floor = time.perf_counter() - started
    print(f"   floor (read the same rows, no hashing): {rows:,} rows in {floor:.1f} s = {rows / floor:,.0f} rows/s")
    print(f"   chain_check ÷ floor: {took / floor:.1f}×")


if __name__ == "__main__":
    main()
