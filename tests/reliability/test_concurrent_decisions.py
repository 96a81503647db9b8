"""Twenty threads file, approve and cancel the same few releases through the API at once, and scale and
decommission their applications, while a worker runs them.

Afterwards the history must be one a single careful operator could have made:
at most one release in flight per lane at any moment and no scale or
decommission while one is (they are lane work too), every approver counted
once, each state reached by one transition from the state before it, approvals
matching the states, and an audit chain that verifies. Every answer is a
success or the services' own refusal (403/409), never a 500 or an exception.
"""
import random
import threading
from collections import Counter, defaultdict

import pytest
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from deployments.models import Environment
from tests.deployments.factories import ApplicationFactory, MembershipFactory
from tests.workflows.factories import PINNED, file_release
from workflows.choices import FINAL, IN_FLIGHT
from workflows.models import Approval, AuditEvent, Release
from workflows.services import approval_grant

from .conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.usefixtures("quick_pipeline")]
THREADS, OPERATIONS = 20, 6
EXPECTED = {200, 201, 204, 403, 409}
NOT_DEPLOYED = (400, "not_deployed")  # a scale of a lane nothing runs in yet (or any more)


def test_concurrent_filings_approvals_and_cancels_keep_every_invariant(project, sandbox_cluster, worker):
    # given two lanes of a prod that needs two approvals, with releases waiting in both
    developers = [MembershipFactory(project=project, role="developer").user for _ in range(2)]
    approvers = [MembershipFactory(project=project, role="approver").user for _ in range(4)]
    maintainer = MembershipFactory(project=project, role="maintainer").user
    prod = Environment.objects.create(name="prod", cluster=sandbox_cluster, required_approvals=2,
                                      rollout_deadline_seconds=5)
    apps = [ApplicationFactory(project=project, name=f"app{i}", replicas=1) for i in range(2)]
    running = [file_release(actor=developers[0], application=app, environment=prod, version="0.9") for app in apps]
    for release in running:  # both applications run in prod, so there is something to scale and decommission
        for approver in approvers[:2]:
            approval_grant(release_id=release.id, actor=approver)
    assert wait_until(lambda: all(Release.objects.get(id=r.id).state == "succeeded" for r in running), 60)
    for i in range(6):
        file_release(actor=developers[i % 2], application=apps[i % 2], environment=prod, version=f"1.{i}")
    answers, failures = [], []
    barrier = threading.Barrier(THREADS)

    def operate(seed: int) -> None:
        rng = random.Random(seed)
        barrier.wait()
        try:
            for _ in range(OPERATIONS):
                ids = list(Release.objects.values_list("id", flat=True))
                kind = rng.choices(["approve", "cancel", "file", "scale", "decommission"], weights=[6, 2, 1, 2, 0.5])[0]
                client = APIClient()
                if kind == "scale":
                    client.force_authenticate(rng.choice(developers))
                    response = client.post(f"/api/v1/applications/{rng.choice(apps).id}/scale/",
                                           {"environment": "prod", "replicas": rng.randint(1, 3)}, format="json")
                elif kind == "decommission":
                    client.force_authenticate(maintainer)
                    response = client.post(f"/api/v1/applications/{rng.choice(apps).id}/decommission/",
                                           {"environment": "prod"}, format="json")
                elif kind == "approve":
                    client.force_authenticate(rng.choice(approvers))
                    response = client.post(f"/api/v1/releases/{rng.choice(ids)}/approve/", {}, format="json")
                elif kind == "cancel":
                    client.force_authenticate(rng.choice(developers))
                    response = client.post(f"/api/v1/releases/{rng.choice(ids)}/cancel/", {}, format="json")
                else:
                    client.force_authenticate(rng.choice(developers))
                    version = f"2.{seed}.{rng.randrange(1000)}"
                    response = client.post("/api/v1/releases/", {
                        "application": rng.choice(apps).id, "environment": "prod", "version": version,
                        "image": PINNED.format(version=version)}, format="json")
                body = response.json() if response.content else {}
                answers.append((kind, response.status_code, body.get("code")))
        except Exception as exc:  # noqa: BLE001 (an unhandled error is exactly what this test looks for)
            failures.append(repr(exc))
        finally:
            connection.close()

    # when they all act at once
    threads = [threading.Thread(target=operate, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wait_until(lambda: not Release.objects.filter(state__in=["approved", *IN_FLIGHT]).exists(), 120, every=0.5)

    # then nobody met an error that was not the services' own refusal
    assert not failures, failures
    unexpected = [a for a in answers if a[1] not in EXPECTED and (a[0], *a[1:]) != ("scale", *NOT_DEPLOYED)]
    assert not unexpected, unexpected
    assert {kind for kind, status, _ in answers if status in (200, 204)} & {"scale", "decommission"}
    # the storm did real work: how much depends on timing (a busy lane refuses scale), never none of it
    done = Counter(kind for kind, status, _ in answers if status in (200, 201, 204))
    assert done["approve"] >= 2 and done["file"] >= 1, done
    releases = list(Release.objects.all())
    # each release's history is one unbroken chain of transitions ending in its state
    transitions = defaultdict(list)
    for event in AuditEvent.objects.filter(action="release.transitioned").order_by("id"):
        transitions[event.release_id].append(event)
    for release in releases:
        chain = [(e.from_state, e.to_state) for e in transitions[release.id]]
        states = ["requested", *[to for _, to in chain]]
        assert all(fro == states[i] for i, (fro, _) in enumerate(chain)), (release.id, chain)
        assert states[-1] == release.state, (release.id, chain, release.state)
        assert release.state in FINAL or release.state == "requested"
        # approvals: each approver once, and "approved" exactly when two of them said so before anything else
        approvals = list(Approval.objects.filter(release=release, voided_at__isnull=True).values_list("approver_id",
                                                                                                  flat=True))
        assert len(approvals) == len(set(approvals)) <= 2, (release.id, approvals)
        assert ("approved" in states) == (len(approvals) == 2), (release.id, states, approvals)
        decided = list(AuditEvent.objects.filter(release_id=release.id, action="release.approved")
                       .values_list("actor", flat=True))
        assert sorted(decided) == sorted(set(decided)) and len(decided) == len(approvals), (release.id, decided)
    # at most one release of a lane in flight at any moment, and no operation on the lane while one is, in the
    # order the audit trail records
    in_flight = {}
    operations = ["application.scaled", "application.decommissioned"]
    for event in AuditEvent.objects.filter(action__in=["release.transitioned", *operations]).order_by("id"):
        if event.action in operations:
            lane = (int(event.target_id), prod.id)
            assert lane not in in_flight, (event.action, lane, in_flight[lane])
            continue
        release = next(r for r in releases if r.id == event.release_id)
        lane = (release.application_id, release.environment_id)
        if event.to_state in IN_FLIGHT:
            assert in_flight.get(lane) in (None, release.id), (lane, in_flight.get(lane), release.id)
            in_flight[lane] = release.id
        elif in_flight.get(lane) == release.id:
            del in_flight[lane]
    call_command("audit_verify")  # raises CommandError naming the first bad link
