"""What the benchmarks share: a throw-away PostgreSQL database, raw SQL, production-like settings, ports."""
import base64
import hashlib
import os
import socket
import sys
import time

from django.core.management import call_command
from django.db import OperationalError, connection


def database_prepare() -> None:
    """Refuse anything but a PostgreSQL database named ``*bench*``; create it if missing, then migrate."""
    settings_db = connection.settings_dict
    name = settings_db["NAME"]
    if connection.vendor != "postgresql" or "bench" not in name:
        sys.exit(f"refusing to run on {connection.vendor} database {name!r}: "
                 "set DATABASE_URL to a PostgreSQL database whose name contains 'bench'.")
    try:
        connection.ensure_connection()
    except OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
        import psycopg

        params = {"dbname": "postgres", "user": settings_db["USER"], "password": settings_db["PASSWORD"] or None,
                  "host": settings_db["HOST"] or None, "port": settings_db["PORT"] or None}
        with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        print(f"   created database {name}")
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        print(f"== database {name}: {cursor.fetchone()[0].split(' on ')[0]}")


def sql(statement: str, params: dict | list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def production_like_environment() -> None:
    """DEBUG off (it keeps every SQL statement in memory) with bench-only secrets; call before ``django.setup()``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas_site.settings")
    os.environ["DEBUG"] = ""
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("SLIPWAY_ENCRYPTION_KEYS",
                          base64.urlsafe_b64encode(hashlib.sha256(b"bench-only").digest()).decode())
    os.environ.setdefault("SLIPWAY_AUDIT_KEYS", "bench:" + hashlib.sha256(b"bench-only-audit").hexdigest())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not start listening on port {port}")
