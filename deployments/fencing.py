"""Fencing tokens: every write a piece of lane work makes to the outside checks, just before it, that the work
still holds its claim on the lane.

Lane work is a release step (the claim is its StepRun attempt) or a lane operation (scale, decommission; the
claim is its LaneOperation row). A worker can outlive its claim: it hangs in a request, the reaper fails the
step and another worker rolls back; then the first one wakes up. A ``Fence`` is the claim's check, handed down
by whoever holds the claim (``workflows``: ``deployments`` and ``dns`` never look up claims themselves). Callers
call it with what they are about to do, immediately before each cluster, DNS and registry write, and before
recording a revision; a stale claim raises ``StaleClaim`` and nothing more is written.

The residual window, honestly: the check is a database read, the write a network request after it. A claim
that goes stale between the two (or a write already on the wire, held by a slow server, when the reaper moves
on) can still land once. What the fence guarantees is that a stale worker stops at its next write, so it can
never replay a whole deploy over a rollback; a revision is recorded only under the lane lock with the check
inside the same transaction, so the database never records stale work. Writes are idempotent and ordered
(Namespace first, Deployment late), which keeps that one landed write to the least harmful.
"""
from collections.abc import Callable

Fence = Callable[[str], None]


class StaleClaim(Exception):  # noqa: N818 (a state, not a failure of the code: the work belongs to someone else now)
    """The lane work lost its claim (reaped, superseded or cancelled): stop without writing anything else."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def unfenced(what: str) -> None:
    """The fence of writes that are not lane work (the DNS reconcile, seeding, tests of the adapters)."""
