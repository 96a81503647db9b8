"""A Celery worker killed with SIGKILL in the middle of every kind of step; a new worker finishes each release once.

Four releases, each in its own environment and cluster, are held inside a
different step by a real stall: the registry never answers the build's
manifest request, and each sandbox cluster hangs the first request of one HTTP
method (deploy's PATCH, verify's GET, the rollback's DELETE). Then the whole
worker process group gets SIGKILL: nothing is acknowledged, nothing cleaned up.
A new worker starts and the reaper (played here by the test, as the beat
would) re-drives each step once its lease has expired: the dead worker's
heartbeat stopped renewing it. Runs on Redis and on RabbitMQ (which gives the
unacknowledged messages back at once: the claims, still leased, drop them) and
prints the time to recovery.
"""
import pytest
from django.utils import timezone

from deployments import services as deployments
from deployments.kube import ObjectNotFound
from deployments.models import Environment, Revision
from deployments.sandbox import SandboxCluster
from dns.models import EnvironmentZone, Record, Zone
from tests.conftest import SANDBOX_TOKEN
from tests.deployments.factories import ApplicationFactory, ClusterFactory, MembershipFactory
from tests.workflows.factories import file_release
from workflows.audit import chain_verify
from workflows.choices import FINAL
from workflows.models import AuditEvent, Release, StepRun
from workflows.services import pipeline

from .conftest import LEASE_SECONDS, StallingProxy, tasks_sent_to, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
QUEUE = "reliability-kill"
HANG = 120  # longer than the test: only the SIGKILL ends these requests
BROKEN = "registry.example.com/shop/{app}:1.0-broken@sha256:" + "d" * 64
FORWARD = ["approved", "building", "deploying", "verifying", "succeeded"]
ROLLED_BACK = ["approved", "building", "deploying", "verifying", "failed", "rolling_back", "rolled_back"]


@pytest.fixture
def clusters():
    """One sandbox per step kind, so each can stall its own step without touching the others."""
    sandboxes = {step: SandboxCluster(port=0, rollout_delay=0.1, token=SANDBOX_TOKEN) for step in
                 ("build", "deploy", "verify", "rollback")}
    for sandbox in sandboxes.values():
        sandbox.start()
    yield sandboxes
    for sandbox in sandboxes.values():
        sandbox.stop()


@pytest.fixture
def stalling_registry(registry, settings):
    proxy = StallingProxy(registry.host)
    settings.SLIPWAY_REGISTRIES = [*settings.SLIPWAY_REGISTRIES, proxy.host]  # releases name images on it
    yield proxy
    proxy.stop()


def live_deployment(app, env) -> dict | None:
    try:
        return deployments.cluster_client(env.cluster).read("Deployment", app.name, f"shop-{env.name}")
    except ObjectNotFound:
        return None


def in_step(release: Release, step: str) -> bool:
    return StepRun.objects.filter(release=release, step=step, status="running").exists()


def test_sigkill_inside_each_kind_of_step_then_a_new_worker_finishes_each_release_once(
        project, clusters, stalling_registry, registry, start_worker, settings, broker_url):
    settings.SLIPWAY_STEP_LEASE_SECONDS = LEASE_SECONDS
    developer = MembershipFactory(project=project, role="developer").user
    zone = Zone.objects.create(name="apps.test.", provider="local", default_ttl=60)
    world = {}
    for step, sandbox in clusters.items():
        cluster = ClusterFactory(name=f"c-{step}", api_server=sandbox.url, token=SANDBOX_TOKEN, ingress_address="127.0.0.10")
        environment = Environment.objects.create(name=step, cluster=cluster, required_approvals=0,
                                                 rollout_deadline_seconds=3)
        EnvironmentZone.objects.create(environment=environment, zone=zone)
        world[step] = ApplicationFactory(project=project, name=f"app-{step}", replicas=1, exposed=True), environment
    digest = registry.push_image("shop/app-build", "1.0")
    build_image = f"{stalling_registry.host}/shop/app-build:1.0"

    # given each release stalled inside its own kind of step, on a worker with a thread for each
    clusters["deploy"].inject_fault("hang", hang_seconds=HANG, method="PATCH")
    clusters["verify"].inject_fault("hang", hang_seconds=HANG, method="GET")
    clusters["rollback"].inject_fault("hang", hang_seconds=HANG, method="DELETE")
    with tasks_sent_to(queue=QUEUE, broker_url=broker_url):
        worker = start_worker(queue=QUEUE, broker_url=broker_url, concurrency=4)
        releases = {step: file_release(actor=developer, application=app, environment=env,
                                       **({"image": BROKEN.format(app=app.name)} if step == "rollback" else {}))
                    for step, (app, env) in world.items() if step != "build"}
        stalled = wait_until(lambda: all(in_step(r, s) and clusters[s].faults.describe() is None
                                         for s, r in releases.items()), 60)
        assert stalled, (list(StepRun.objects.values_list("release_id", "step", "status")), worker.log())
        # the build is filed last: the registry adapter's own timeout must not end its stall before the kill;
        # filing pins the tag through the proxy (that connection passes), the build's check of it stalls
        stalling_registry.stall_next(after=1)
        releases["build"] = file_release(actor=developer, application=world["build"][0],
                                         environment=world["build"][1], image=build_image)
        assert wait_until(lambda: in_step(releases["build"], "build") and stalling_registry.stalled, 30), worker.log()

        # when the worker is killed outright, and a new one starts while the beat runs the reaper
        worker.kill()
        killed_at = timezone.now()
        worker = start_worker(queue=QUEUE, broker_url=broker_url, concurrency=4)
        finished = wait_until(lambda: all(Release.objects.get(id=r.id).state in FINAL for r in releases.values()),
                              90, every=0.5, on_tick=pipeline.steps_reap)
    states = {step: Release.objects.get(id=r.id).state for step, r in releases.items()}
    assert finished, (states, worker.log())
    redriven = [(StepRun.objects.get(release=r, step=s, attempt=2).started_at - killed_at).total_seconds()
                for s, r in releases.items()]
    done = [(Release.objects.get(id=r.id).finished_at - killed_at).total_seconds() for r in releases.values()]
    print(f"\nrecovery after SIGKILL ({broker_url.split(':')[0]}, lease {LEASE_SECONDS}s): steps re-driven after "
          f"{min(redriven):.1f}-{max(redriven):.1f}s, releases finished after {min(done):.1f}-{max(done):.1f}s")

    # then every release ended as it would have without the crash
    assert states == {"build": "succeeded", "deploy": "succeeded", "verify": "succeeded", "rollback": "rolled_back"}
    for step, release in releases.items():
        app, env = world[step]
        runs = list(release.steps.filter(step=step).order_by("attempt").values_list("status", "error"))
        assert runs[0][0] == "failed" and "worker lost" in runs[0][1], (step, runs)
        # the new worker may meet a transient error first (retried); the step succeeds exactly once
        assert [status for status, _ in runs].count("succeeded") == 1 and runs[-1][0] == "succeeded", (step, runs)
        # each transition and each finished step is audited once
        transitions = list(AuditEvent.objects.filter(release_id=release.id, action="release.transitioned")
                           .values_list("to_state", flat=True))
        assert transitions == (ROLLED_BACK if step == "rollback" else FORWARD), (step, transitions)
        succeeded_steps = list(AuditEvent.objects.filter(release_id=release.id, action="step.finished",
                                                         after__status="succeeded").values_list("after__step", flat=True))
        assert succeeded_steps == (["build", "deploy", "rollback"] if step == "rollback"
                                   else ["build", "deploy", "verify"]), (step, succeeded_steps)
        # one revision per deploy (the rollback also records the removal), the cluster and DNS as expected
        kinds = list(Revision.objects.filter(application=app, environment=env).order_by("number")
                     .values_list("kind", flat=True))
        deployment = live_deployment(app, env)
        records = sorted(Record.objects.filter(application=app, environment=env).values_list("type", "content"))
        if step == "rollback":
            assert kinds == ["apply", "decommission"]
            assert deployment is None and records == []
        else:
            assert kinds == ["apply"]
            assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(release.image_digest or "")
            assert records[0] == ("A", "127.0.0.10") and [t for t, _ in records] == ["A", "TXT"], records
    built = Release.objects.get(id=releases["build"].id)
    assert built.image_digest == digest
    assert chain_verify()[2] == ""
