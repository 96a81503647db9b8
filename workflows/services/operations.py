"""Operations on running applications (scale, decommission): lane work, audited.

An operation claims its lane the way a step does. Under the lane lock it is refused (409 ``lane_busy``)
while a release of the lane is in flight or another operation holds it; otherwise a ``LaneOperation`` row
is its claim, and ``lane_advance`` starts no release while it exists. The cluster and DNS writes run
without locks, each checking the claim first (the operation's fence, ``deployments/fencing.py``); a heartbeat
renews the claim's short lease meanwhile (``leases.py``), so only a dead process's claim expires. When the
operation ends, done or failed, one transaction audits what it did, drops the claim and, when a release
was approved meanwhile, lets the lane advance.
"""
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone

from deployments import services as deployments
from deployments.fencing import StaleClaim
from deployments.models import Application, Environment
from deployments.permissions import Action, project_require
from dns import services as dns
from paas_site.errors import Conflict

from .. import audit
from ..audit import Actor
from ..choices import IN_FLIGHT
from ..locks import lane_lock
from ..models import LaneOperation, Release
from . import leases
from .pipeline import lane_advance_if_queued, step_lease


def application_scale(*, application: Application, environment: Environment, replicas: int, actor: Actor) -> int:
    """Scale a running application (within its autoscaling bounds) and audit it; returns the old count."""
    project_require(actor, Action.SCALE, application.project)
    with lane_claim(application=application, environment=environment, kind="scale", actor=actor) as operation:
        before = deployments.deployment_scale(
            application_id=application.id, environment_id=environment.id, replicas=replicas, fence=operation.fence
        )
        operation.done(lambda: audit.application_scaled(
            actor=actor, application=application, environment=environment, before=before, after=replicas
        ))
    return before


def application_decommission(*, application: Application, environment: Environment, actor: Actor) -> None:
    """Remove a running application from an environment: its objects and its DNS name; audited."""
    project_require(actor, Action.DECOMMISSION, application.project)
    with lane_claim(application=application, environment=environment, kind="decommission", actor=actor) as operation:
        live = deployments.revision_live(application=application, environment=environment)
        deployments.application_decommission(
            application_id=application.id, environment_id=environment.id, fence=operation.fence
        )
        dns.dns_unpublish(application_id=application.id, environment_id=environment.id, fence=operation.fence)
        operation.done(lambda: audit.application_decommissioned(
            actor=actor, application=application, environment=environment, revision=live.number if live else None
        ))


class ClaimedOperation:
    """What an operation holds while it runs: its fence, and ``done`` to audit its result as it ends."""

    def __init__(self, claim: LaneOperation):
        self.claim = claim
        self.on_done: Callable[[], object] | None = None
        self.lease = leases.Lease(token=f"lane-operation-{claim.id}", what=f"the {claim.kind} of the application",
                                  renew=self._renew)

    def _renew(self) -> bool:
        now = timezone.now()
        return LaneOperation.objects.filter(id=self.claim.id, expires_at__gt=now).update(
            expires_at=now + step_lease()) == 1

    def fence(self, what: str) -> None:
        self.lease.check(what)
        if not LaneOperation.objects.filter(id=self.claim.id, expires_at__gt=timezone.now()).exists():
            claim = self.claim
            raise StaleClaim(f"the {claim.kind} of {claim.application.name} in {claim.environment.name} lost its "
                             f"claim on the lane (it expired): stopped before {what}")

    def done(self, audit_event: Callable[[], object]) -> None:
        """Record the operation's audit event in the transaction that ends it."""
        self.on_done = audit_event


@contextmanager
def lane_claim(
    *, application: Application, environment: Environment, kind: str, actor: Actor
) -> Iterator[ClaimedOperation]:
    """Hold the lane for an operation; 409 ``lane_busy`` while a release or another operation holds it."""
    operation = ClaimedOperation(_claim(application=application, environment=environment, kind=kind, actor=actor))
    try:
        with operation.lease:
            yield operation
    except StaleClaim as exc:
        _release(operation.claim, audit_event=None)
        raise Conflict(f"{exc.message}; nothing more was changed. Check the application and try again.",
                       code="lane_claim_lost") from None
    except BaseException:
        _release(operation.claim, audit_event=None)
        raise
    _release(operation.claim, audit_event=operation.on_done)


@transaction.atomic
def _claim(*, application: Application, environment: Environment, kind: str, actor: Actor) -> LaneOperation:
    lane_lock(application.id)
    busy = Release.objects.filter(application=application, environment=environment, state__in=IN_FLIGHT).first()
    if busy:
        raise Conflict(f"Release #{busy.id} is {busy.state} in {environment.name}; {kind} after it finishes.",
                       code="lane_busy", extra={"release": busy.id})
    now = timezone.now()
    held = LaneOperation.objects.filter(application=application, environment=environment).first()
    if held and held.expires_at > now:
        raise Conflict(f"A {held.kind} of {application.name} in {environment.name} (by {held.actor}) is in progress; "
                       f"{kind} after it finishes.", code="lane_busy")
    if held:
        held.delete()  # its process died with the claim: the lease is over
    return LaneOperation.objects.create(
        application=application, environment=environment, kind=kind, actor=str(actor)[:150],
        expires_at=now + step_lease(),
    )


@transaction.atomic
def _release(claim: LaneOperation, *, audit_event: Callable[[], object] | None) -> None:
    lane_lock(claim.application_id)
    LaneOperation.objects.filter(id=claim.id).delete()
    lane_advance_if_queued(application_id=claim.application_id, environment_id=claim.environment_id)
    if audit_event is not None:
        audit_event()  # the audit chain head is the last lock of the order
