"""Heartbeat leases on real PostgreSQL: renewed while held (compare-and-set on the claim), never once stolen.

The heartbeat is a real thread on a connection of its own, beating every 0.1 s with a 0.5 s lease; the claims are
changed the way the reaper, a second worker's claim and a lane operation's successor change them.
"""
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.fencing import StaleClaim
from deployments.models import Environment
from tests.deployments.factories import ApplicationFactory, MembershipFactory
from tests.workflows.factories import file_release
from workflows.models import LaneOperation, Release, StepRun
from workflows.services import leases, operations, pipeline

pytestmark = [pytest.mark.django_db(transaction=True)]
LEASE, BEAT = 0.5, 0.1


@pytest.fixture(autouse=True)
def fast_heartbeat(settings):
    settings.SLIPWAY_STEP_LEASE_SECONDS, settings.SLIPWAY_STEP_HEARTBEAT_SECONDS = LEASE, BEAT


@pytest.fixture
def lane(project, sandbox_cluster):
    developer = MembershipFactory(project=project, role="developer").user
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=1)
    app = ApplicationFactory(project=project, name="api", replicas=1)
    return developer, app, dev


@pytest.fixture
def claimed(lane):
    """A release in ``deploying`` whose deploy attempt 1 holds a lease (no worker runs it)."""
    developer, app, dev = lane
    release = file_release(actor=developer, application=app, environment=dev)  # waits for an approval: no worker
    Release.objects.filter(id=release.id).update(state="deploying")
    return StepRun.objects.create(release=release, step="deploy", attempt=1, status="running",
                                  lease_expires_at=timezone.now() + timedelta(seconds=LEASE),
                                  lease_token=leases.new_token())


def lease_of(run: StepRun):
    return StepRun.objects.values_list("lease_expires_at", flat=True).get(id=run.id)


def test_a_held_step_lease_is_renewed_past_its_first_expiry(claimed):
    first = lease_of(claimed)
    with pipeline._step_lease(claimed) as lease:
        time.sleep(3 * LEASE)
        assert not lease.lost.is_set()
        renewed = lease_of(claimed)
    assert renewed > first + timedelta(seconds=LEASE)
    assert not leases.held_here(claimed.lease_token)  # the work ended: a retry of this process may take over


@pytest.mark.parametrize("steal", ["reaped", "expired"])
def test_a_stolen_or_lapsed_lease_is_never_renewed_and_stops_the_work(claimed, steal):
    with pipeline._step_lease(claimed) as lease:
        if steal == "reaped":  # what a second worker's claim does: the attempt fails, attempt 2 holds the step
            StepRun.objects.filter(id=claimed.id).update(status="failed", error="worker lost (lease expired)")
            StepRun.objects.create(release_id=claimed.release_id, step="deploy", attempt=2, status="running",
                                   lease_token=leases.new_token())
        else:  # the lease ran out (the heartbeat could not reach the database in time)
            StepRun.objects.filter(id=claimed.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        after_steal = lease_of(claimed)
        assert lease.lost.wait(5 * BEAT + 1)
        with pytest.raises(StaleClaim, match="lost its lease"):
            pipeline.step_fence(claimed, lease)("apply Deployment api")
        with pytest.raises(StaleClaim, match="stopped before polling again"):
            pipeline.step_fence(claimed, lease).sleep(10)  # a poll stops at once, not after 10 s
        time.sleep(3 * BEAT)
    assert lease_of(claimed) == after_steal


def test_a_lane_operation_keeps_its_claim_while_it_runs_and_loses_it_when_taken(lane, developer):
    _, app, dev = lane
    with operations.lane_claim(application=app, environment=dev, kind="scale", actor=developer) as operation:
        first = operation.claim.expires_at
        time.sleep(2 * LEASE)
        operation.fence("scale Deployment api")  # still ours, past the first expiry
        assert LaneOperation.objects.get(id=operation.claim.id).expires_at > first + timedelta(seconds=LEASE / 2)
        LaneOperation.objects.filter(id=operation.claim.id).update(expires_at=timezone.now())  # it lapsed
        assert operation.lease.lost.wait(5 * BEAT + 1)
        with pytest.raises(StaleClaim):
            operation.fence("scale Deployment api")
