"""The broker crashes in the middle of a batch of releases; every release still finishes, once.

A private ``redis-server`` (or RabbitMQ node) is crashed with SIGKILL while releases are in flight.
Without persistence the Redis restart loses every queued, scheduled and unacknowledged
message: the releases' state in PostgreSQL is all that is left, and the beat's
``lanes_advance_due`` and ``steps_reap`` must start and re-drive them from it.
With an fsynced append-only file the messages survive and the worker just reconnects.
RabbitMQ's quorum queues keep every confirmed message on disk; the crash also
drops the worker's connection, so what it held unacknowledged is delivered again
(and dropped by the claims when the step is still leased).
"""
import itertools

import pytest
from kombu.exceptions import OperationalError as BrokerUnavailable

from deployments.models import Environment, Revision
from tests.deployments.factories import ApplicationFactory, MembershipFactory
from tests.workflows.factories import file_release
from workflows.audit import chain_verify
from workflows.choices import FINAL
from workflows.models import AuditEvent, Release
from workflows.services import pipeline

from .conftest import LEASE_SECONDS, tasks_sent_to, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
QUEUE = "reliability-broker"
FORWARD = ["approved", "building", "deploying", "verifying", "succeeded"]


def beat() -> None:
    """What the beat does every few seconds; while the broker is down its sends fail, and it tries again next time."""
    try:
        pipeline.lanes_advance_due()
        pipeline.steps_reap()
    except BrokerUnavailable:
        pass


@pytest.mark.parametrize("broker", ["redis-no-persistence", "redis-append-only-file", "rabbitmq-quorum-queues"])
def test_a_broker_crash_mid_batch_loses_no_release(broker, project, sandbox_cluster, start_worker, settings, request):
    settings.SLIPWAY_STEP_LEASE_SECONDS = LEASE_SECONDS
    developer = MembershipFactory(project=project, role="developer").user
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=0, rollout_deadline_seconds=5)
    apps = [ApplicationFactory(project=project, name=f"app{i}", replicas=1) for i in range(3)]
    if broker.startswith("rabbitmq"):
        server = request.getfixturevalue("rabbitmq_server")()
    else:
        server = request.getfixturevalue("redis_server")(persistent=broker == "redis-append-only-file")

    with tasks_sent_to(queue=QUEUE, broker_url=server.url):
        worker = start_worker(queue=QUEUE, broker_url=server.url)
        # given a batch of six releases, two queued in each of three lanes
        releases = [file_release(actor=developer, application=app, environment=dev, version=version)
                    for version, app in itertools.product(["1.0", "2.0"], apps)]
        assert wait_until(lambda: Release.objects.filter(state="succeeded").exists(), 60), worker.log()
        # when the broker crashes with releases still in flight or queued, and comes back on the same port
        server.crash()
        unfinished = Release.objects.exclude(state__in=FINAL).count()
        server.start()
        # then the worker reconnects and the beat recovers whatever the crash lost
        finished = wait_until(lambda: not Release.objects.exclude(state__in=FINAL).exists(), 90, every=0.5,
                              on_tick=beat)
    assert finished, (list(Release.objects.values_list("id", "state")), worker.log())
    assert unfinished > 0, "the crash came too late to test anything"

    for release in releases:
        release.refresh_from_db()
        assert release.state == "succeeded", (release.id, release.failure_reason)
        transitions = list(AuditEvent.objects.filter(release_id=release.id, action="release.transitioned")
                           .values_list("to_state", flat=True))
        assert transitions == FORWARD, (release.id, transitions)
        assert Revision.objects.filter(release=str(release.id)).count() == 1
    for app in apps:  # each lane ran its releases in order, one at a time
        first, second = Release.objects.filter(application=app).order_by("id")
        assert first.finished_at <= second.started_at
    assert chain_verify()[2] == ""
