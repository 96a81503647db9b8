"""The lock order, for every service of every app, and the helpers that take the locks.

Row locks are always taken in this order (a transaction may skip ranks, never go back up):

1. the lane: the ``deployments.Application`` row (``lane_lock``). Every decision about a lane of the
   application (starting a release, a step's claim and finish, claiming a lane operation, numbering a
   revision, editing the application for a middleware release) holds it, so they are serialized;
2. a ``workflows.Release`` row (``workflows.locks.release_lock``: the lane, then the release);
3. a ``workflows.LaneOperation`` claim, then ``workflows.StepRun`` rows (written under the release's lock);
4. rows of other apps touched inside those transactions, each by one writer at a time: ``dns.Record`` rows
   of the lane (``rows_lock``, in id order), a billing price book or budget and the Environment or Cluster
   row a price-book writer serializes its scope on (``billing``), ``deployments.BaseImage``, API tokens and
   sign-in attempt rows (``workflows.services.signin``); at a directory sign-in the user row, then its
   ``workflows.DirectoryAccount``, then its memberships (``workflows.services.directory``);
5. the audit chain head, last: every transaction appends its audit events at its end.

Locks are FOR NO KEY UPDATE of the row itself: they serialize the services with each other but never block
the KEY SHARE locks PostgreSQL's foreign-key checks take at commit. A plain FOR UPDATE (which, with
select_related, also locks every joined row: environment, project, cluster) deadlocks against a transaction
that holds the audit chain head and commits a row referencing one of them.

``deployments`` imports no other app, so the release-side helpers live in ``workflows/locks.py``; this module
is the one that states the order.
"""
from typing import TypeVar

from django.db.models import Model, QuerySet

from .models import Application

M = TypeVar("M", bound=Model)


def lane_lock(application_id: int) -> Application:
    """Take the first lock of the order: the application row (all its lanes). Call inside ``atomic``."""
    return row_lock(Application.objects.all(), application_id)


def row_lock(queryset: QuerySet[M], pk: int) -> M:
    """Lock one row of ``queryset`` (FOR NO KEY UPDATE of that row only, joined rows stay unlocked)."""
    return queryset.select_for_update(of=("self",), no_key=True).get(pk=pk)


def rows_lock(queryset: QuerySet[M], *, skip_locked: bool = False) -> list[M]:
    """Lock the rows of ``queryset`` (theirs only) in id order, so two lockers never wait on each other crosswise;
    with ``skip_locked``, the rows another transaction holds are left out."""
    return list(queryset.select_for_update(of=("self",), no_key=True, skip_locked=skip_locked).order_by("id"))
