"""Exactly one Celery beat (paas_site.beat_lock): real `celery beat` processes against PostgreSQL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from paas_site.beat_lock import LOCK_CLASS_ID, LOCK_OBJECT_ID
from tests.deploy.conftest import REPO

ACQUIRED = "beat lock acquired"
# The beats' tasks go to an in-process broker: no test worker may ever receive one.
BEAT_ENV = {"CELERY_BROKER_URL": "memory://", "SLIPWAY_BEAT_LOCK_WAIT_SECONDS": "0.2", "SLIPWAY_BEAT_LOCK_CHECK_SECONDS": "0.2"}


class Beat:
    """A `celery -A paas_site beat` process whose log lines are collected as they come."""

    def __init__(self, env: dict[str, str], schedule: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "--app=paas_site", "beat", "--loglevel=INFO", f"--schedule={schedule}"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """The first log line containing `text` (fails with the log if none comes in time)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [line for line in self.lines if text in line]
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and self.process.stdout.closed):
                    pytest.fail(f"no log line with {text!r}:\n{''.join(self.lines)}")
                self._changed.wait(min(remaining, 0.5))

    def log(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start_beat(database_url, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url, **BEAT_ENV}
    beats: list[Beat] = []

    def start() -> Beat:
        beats.append(Beat(env, tmp_path / f"schedule-{len(beats)}"))
        return beats[-1]

    yield start
    for beat in beats:
        beat.stop()


@pytest.fixture
def admin(database_url):
    """An autocommit session of our own on the test database, for what an operator (or a fault) does."""
    with psycopg.connect(database_url, autocommit=True) as session:
        yield session


def lock_holders(admin) -> list[int]:
    """Backend pids of the sessions holding the beat lock in the test database."""
    rows = admin.execute(
        "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = "
        "'advisory' AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 2 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        [LOCK_CLASS_ID, LOCK_OBJECT_ID]).fetchall()
    return [row[0] for row in rows]


def test_of_two_beats_one_schedules_and_the_other_waits_until_it_is_gone(start_beat, admin):
    # given two beats started together
    beats = [start_beat(), start_beat()]

    # when each has asked for the lock
    for beat in beats:
        beat.wait_for("beat lock ")
    first, second = sorted(beats, key=lambda beat: ACQUIRED not in beat.log())

    # then one holds it, and the other names the holder and schedules nothing while it runs
    assert ACQUIRED in first.log()
    waiting = second.wait_for("beat lock is held by")
    assert re.search(r"held by slipway-beat@\S+ \(backend pid \d+", waiting), waiting
    assert ACQUIRED not in second.log()
    assert len(lock_holders(admin)) == 1

    # when the first stops, the second takes over at once
    first.stop()
    assert first.process.returncode == 0
    second.wait_for(ACQUIRED, timeout=10)
    assert len(lock_holders(admin)) == 1


def test_a_beat_that_loses_its_lock_stops(start_beat, admin):
    # given a beat holding the lock
    beat = start_beat()
    beat.wait_for(ACQUIRED)
    [holder] = lock_holders(admin)

    # when its database session ends (a failover, a network cut, an operator)
    admin.execute("SELECT pg_terminate_backend(%s)", [holder])

    # then it stops rather than run beside the next beat
    beat.wait_for("beat lock lost")
    beat.process.wait(timeout=15)
    assert lock_holders(admin) == []


def test_a_beat_that_cannot_reach_the_database_does_not_start(tmp_path):
    # given a database that refuses connections (nothing listens on port 1)
    beat = Beat({**os.environ, **BEAT_ENV, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/slipway"}, tmp_path / "schedule")
    try:
        # then the beat exits instead of scheduling without the lock
        beat.wait_for("could not take the lock")
        assert beat.process.wait(timeout=15) == 1
        assert ACQUIRED not in beat.log()
    finally:
        beat.stop()
