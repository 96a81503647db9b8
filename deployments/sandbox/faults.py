"""Injected API failures, so retry and timeout handling can be tested for real.

A fault covers the next N Kubernetes API requests (the sandbox's own `/sandbox/`
endpoints are never affected), or only the next N with one HTTP `method` (so a
test can hit, say, the DELETEs of a rollback and nothing before it; `WATCH` means
the GETs that open a watch, and only those): `503`
answers ServiceUnavailable, `429` answers TooManyRequests with `Retry-After: 1`,
`hang` holds the request for `hang_seconds` before answering 503, to
trigger client timeouts, and `slow` holds it for `hang_seconds` and then serves
it as usual (a wedged API server that recovers: the client's write lands late).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

from .errors import ApiError, bad_request, service_unavailable, too_many_requests

MODES = ("503", "429", "hang", "slow")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "WATCH")  # WATCH: a GET with `watch=true`


@dataclass(frozen=True)
class Fault:
    mode: str
    remaining: int
    hang_seconds: float
    method: str | None = None  # None: every request


class FaultInjector:
    """Thread-safe countdown of pending faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        # Set on shutdown so hanging requests finish at once instead of holding up the server.
        self._released = threading.Event()

    def inject(self, mode: str, count: int, hang_seconds: float = 5.0, method: str | None = None) -> None:
        """Make the next `count` API requests (with `method`, if given) fail in `mode`, replacing any pending fault."""
        if mode not in MODES:
            raise bad_request(f"unknown fault mode {mode!r}; expected one of {', '.join(MODES)}")
        if not isinstance(count, int) or count < 1:
            raise bad_request("fault count must be a positive integer")
        if not isinstance(hang_seconds, int | float) or hang_seconds < 0:
            raise bad_request("hang_seconds must be a non-negative number")
        if method is not None and method not in METHODS:
            raise bad_request(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
        with self._lock:
            self._fault = Fault(mode, count, float(hang_seconds), method)

    def clear(self) -> None:
        with self._lock:
            self._fault = None

    def release(self) -> None:
        """End every hang now and from now on (the server is shutting down)."""
        self._released.set()

    def describe(self) -> dict | None:
        with self._lock:
            return asdict(self._fault) if self._fault else None

    def take(self, method: str) -> ApiError | None:
        """Consume one request's share of the pending fault; the error to answer with, if any.

        Hangs happen here, in the request's own thread, outside the lock; a slow request is then served.
        """
        with self._lock:
            fault = self._fault
            if fault is None or fault.method not in (None, method):
                return None
            remaining = fault.remaining - 1
            self._fault = Fault(fault.mode, remaining, fault.hang_seconds, fault.method) if remaining else None
        if fault.mode == "429":
            return too_many_requests()
        if fault.mode in ("hang", "slow"):
            self._released.wait(fault.hang_seconds)
        return None if fault.mode == "slow" else service_unavailable()
