"""What every benchmark needs from PostgreSQL: a throw-away database and raw SQL."""
import sys

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
