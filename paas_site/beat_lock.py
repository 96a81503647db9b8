"""Exactly one Celery beat: a beat schedules nothing until it holds a PostgreSQL advisory lock, and stops when it loses it.

Two beats would run every periodic task twice (two reapers, two checkpoints…). The Kubernetes
manifests run one beat with the Recreate strategy; this lock also stops the beat nobody meant
to start (a pod on a partitioned node, a `celery beat` run by hand). It is connected to
Celery's `beat_init` signal (paas_site/celery.py), so every beat of this app takes it.

The lock belongs to a database session of its own, held for the life of the process: a second
beat waits (saying which session holds it) and takes over the moment that session ends (its
process exited or its connection dropped). A watchdog re-checks the lock every
`SLIPWAY_BEAT_LOCK_CHECK_SECONDS`; when the connection fails or the lock is gone, the beat
stops (SIGTERM to itself) rather than run beside the one that took over. On SQLite (the demo,
one beat by construction) there is no lock.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

# pg_try_advisory_lock(int4, int4): a namespace of Slipway's and the beat's number in it.
LOCK_CLASS_ID = 0x534C5057  # "SLPW"
LOCK_OBJECT_ID = 1
_HOLDER = """
    SELECT a.pid, a.application_name, a.client_addr, a.backend_start
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 2
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


class BeatLock:
    """The advisory lock on a connection of its own; `acquire()` waits for it, `watch()` guards it."""

    def __init__(self, *, alias: str = "default", wait_seconds: float, check_seconds: float) -> None:
        self._alias = alias
        self._wait_seconds = wait_seconds
        self._check_seconds = check_seconds
        self._connection = None

    def _connect(self):
        wrapper = connections[self._alias]
        params = wrapper.get_connection_params()
        # Name the session so a waiting beat (and pg_stat_activity) says who holds the lock; TCP keepalives make
        # a dead connection fail the watchdog's check within seconds instead of hanging it.
        params.update(application_name=f"slipway-beat@{socket.gethostname()}", keepalives=1,
                      keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
        connection = wrapper.get_new_connection(params)
        connection.autocommit = True
        return connection

    def _holder(self) -> str:
        with self._connection.cursor() as cursor:
            cursor.execute(_HOLDER, [LOCK_CLASS_ID, LOCK_OBJECT_ID])
            row = cursor.fetchone()
        if row is None:
            return "a session that just ended"
        pid, application, address, started = row
        return (f"{application or 'an unnamed session'} (backend pid {pid}, from {address or 'a local socket'}, "
                f"since {started:%Y-%m-%d %H:%M:%S %Z})")

    def acquire(self) -> None:
        """Block until this process holds the lock, logging who holds it while waiting."""
        self._connection = self._connect()
        while True:
            with self._connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS_ID, LOCK_OBJECT_ID])
                if cursor.fetchone()[0]:
                    logger.info("beat lock acquired: this is the only Celery beat scheduling Slipway's periodic tasks")
                    return
            logger.warning("beat lock is held by %s: another Celery beat runs; waiting (retry in %ss)",
                           self._holder(), self._wait_seconds)
            time.sleep(self._wait_seconds)

    def held(self) -> bool:
        """True while our session still holds the lock (False, not an error, when the connection is gone)."""
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(_HOLDER + " AND l.pid = pg_backend_pid()", [LOCK_CLASS_ID, LOCK_OBJECT_ID])
                return cursor.fetchone() is not None
        except Exception:  # any failure means we can no longer prove we hold it
            logger.exception("beat lock: checking the lock failed")
            return False

    def watch(self) -> threading.Thread:
        """Start the watchdog: SIGTERM this process (beat shuts down cleanly) once the lock is lost."""
        def run() -> None:
            while True:
                time.sleep(self._check_seconds)
                if not self.held():
                    logger.error("beat lock lost (its database session ended): stopping this beat so that two "
                                 "never run; the next one to start takes over")
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
        thread = threading.Thread(target=run, name="beat-lock-watchdog", daemon=True)
        thread.start()
        return thread


def beat_lock_hold(**_signal_kwargs) -> BeatLock | None:
    """`beat_init` receiver: wait for the lock and guard it (None on a database without advisory locks).

    Fails closed: Celery logs and ignores a receiver's exception, so any failure to take the lock is turned
    into SystemExit, which stops the beat instead of letting it run unlocked.
    """
    if connections["default"].vendor != "postgresql":
        logger.info("beat lock: not enforced on %s (run a single beat)", connections["default"].vendor)
        return None
    lock = BeatLock(wait_seconds=settings.SLIPWAY_BEAT_LOCK_WAIT_SECONDS,
                    check_seconds=settings.SLIPWAY_BEAT_LOCK_CHECK_SECONDS)
    try:
        lock.acquire()
    except Exception:
        logger.exception("beat lock: could not take the lock; not starting this beat")
        raise SystemExit(1) from None
    lock.watch()
    return lock
