"""Benchmark: verify the audit hash chain (1,000,000 events loaded by bench/api_scale.py); events/s.

Run by hand, never in CI, on the data set api_scale.py loaded (it refuses a
database whose name lacks "bench", and changes nothing)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/slipway_benchdata .venv/bin/python bench/audit_verify.py

It times ``workflows.audit.chain_verify`` (what ``manage.py audit_verify``
runs) as one wall-clock interval and prints events/s, then the floor: the same
rows read with ``values_list`` and nothing else done to them, and the ratio.
"""
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas_site.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from workflows.audit import chain_verify  # noqa: E402
from workflows.models import AuditEvent  # noqa: E402


def main() -> None:
    name = connection.settings_dict["NAME"]
    if connection.vendor != "postgresql" or "bench" not in name:
        sys.exit(f"refusing to run on {connection.vendor} database {name!r}: use the one bench/api_scale.py loaded.")
    one, five, fifteen = os.getloadavg()
    print(f"== database {name}; load average {one:.2f} {five:.2f} {fifteen:.2f}")

    started = time.perf_counter()
    checked, bad_event, reason = chain_verify()
    took = time.perf_counter() - started
    print(f"   chain_verify: {checked:,} events in {took:.1f} s = {checked / took:,.0f} events/s; "
          + (f"BROKEN at #{bad_event.id if bad_event else 'head'}: {reason}" if reason else "intact"))

    started = time.perf_counter()
    rows = sum(1 for _ in AuditEvent.objects.order_by("id").values_list().iterator(chunk_size=5000))
    floor = time.perf_counter() - started
    print(f"   floor (read the same rows, no hashing): {rows:,} rows in {floor:.1f} s = {rows / floor:,.0f} rows/s")
    print(f"   chain_verify ÷ floor: {took / floor:.1f}×")


if __name__ == "__main__":
    main()
