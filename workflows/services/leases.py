"""Leases on lane work, renewed by a heartbeat while the work runs, and handed over when a worker stops.

A claim (a step's ``StepRun`` attempt, a lane operation's ``LaneOperation`` row) carries a short lease
(``SLIPWAY_STEP_LEASE_SECONDS``). While the work runs, a ``Lease`` thread renews it every
``SLIPWAY_STEP_HEARTBEAT_SECONDS`` with a compare-and-set: only while the claim is still this worker's
(its token, still running, not yet expired). A lease that lapsed or was taken over is never renewed: the
work learns it at its next fence check or poll (``StaleClaim``), and the fences of ``deployments/fencing.py``
stop it in any case. So a live step, however slow, keeps its lease, and a dead worker's lease runs out within
seconds, when the reaper re-drives the step.

A worker told to stop (SIGTERM: Celery's warm shutdown sends ``worker_shutting_down``; ``stop_requested``)
lets its steps finish for ``SLIPWAY_WORKER_STOP_GRACE_SECONDS``. A step still running then is handed over:
its lease ends now, its attempt says why, and the step is enqueued again for another worker; this one stops
at its next fence check or poll. The signal reaches only the worker's main process; the moment it came is
kept in shared memory made at import, before a prefork pool forks its children, so they see it too.
"""
import logging
import multiprocessing
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType

from django.conf import settings
from django.db import DatabaseError, connection

from deployments.fencing import StaleClaim

logger = logging.getLogger(__name__)
TICK = 0.2  # how often the heartbeat looks at the clock; it writes only every SLIPWAY_STEP_HEARTBEAT_SECONDS

# when the stop was asked for (time.monotonic(), one clock for every process of the host); 0: not asked
_stopping_since = multiprocessing.RawValue("d", 0.0)
_held: set[str] = set()  # tokens of the leases this process's work holds right now
_held_lock = threading.Lock()


def process_id() -> str:
    """This process, as lease tokens name it: two live processes never share it."""
    return f"{socket.gethostname()[:58]}:{os.getpid()}"  # fits the token column with the uuid


def new_token() -> str:
    return f"{process_id()}/{uuid.uuid4().hex}"


def held_here(token: str) -> bool:
    """Work of this process still holds ``token``; ``False`` for another process's token or an ended one."""
    with _held_lock:
        return token in _held


def ended_here(token: str) -> bool:
    """The lease was this process's and the work that held it has ended (it raised before finishing)."""
    return token.startswith(f"{process_id()}/") and not held_here(token)


def stop_requested() -> None:
    """The worker is stopping: running steps get the grace period, then are handed to another worker."""
    if not _stopping_since.value:
        _stopping_since.value = time.monotonic()


class Lease:
    """Hold a claim's lease while the ``with`` block runs: renew it, notice its loss, hand it over on stop.

    ``renew()`` extends the lease if the claim is still ours and says whether it was; ``hand_over()`` (steps
    only) ends it now and enqueues the work again, for a worker that is stopping.
    """

    def __init__(self, *, token: str, what: str, renew: Callable[[], bool],
                 hand_over: Callable[[], bool] | None = None):
        self.token, self.what, self._renew, self._hand_over = token, what, renew, hand_over
        self.lost = threading.Event()
        self.reason = ""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease {what}", daemon=True)

    def __enter__(self) -> "Lease":
        with _held_lock:
            _held.add(self.token)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        self._thread.join()
        with _held_lock:
            _held.discard(self.token)

    def check(self, what: str) -> None:
        """Raise ``StaleClaim`` once the lease is lost or handed over (no database read)."""
        if self.lost.is_set():
            raise StaleClaim(f"{self.what} {self.reason}: stopped before {what}")

    def sleep(self, seconds: float) -> None:
        """Wait between polls; stop at once (``StaleClaim``) if the lease is lost meanwhile."""
        if self.lost.wait(seconds):
            self.check("polling again")

    def _lose(self, reason: str) -> None:
        self.reason = reason
        self.lost.set()

    def _beat(self) -> None:
        interval = settings.SLIPWAY_STEP_HEARTBEAT_SECONDS
        due = time.monotonic() + interval
        try:
            while not self._done.wait(TICK):
                now = time.monotonic()
                stopping = _stopping_since.value
                if (self._hand_over and stopping
                        and now - stopping >= settings.SLIPWAY_WORKER_STOP_GRACE_SECONDS):
                    if self._attempt(self._hand_over):
                        self._lose("was handed to another worker (this one is stopping)")
                        return
                if now < due:
                    continue
                due = now + interval
                if self._attempt(self._renew) is False:
                    self._lose("lost its lease (taken over, finished elsewhere, or expired)")
                    return
        finally:
            connection.close()  # the heartbeat's own connection (Django's are per thread)

    def _attempt(self, write: Callable[[], bool]) -> bool | None:
        """Run one lease write; ``None`` when the database failed (the lease stands until it expires)."""
        try:
            return write()
        except DatabaseError as exc:
            logger.warning("could not renew the lease of %s: %s", self.what, exc)
            connection.close()
            return None
