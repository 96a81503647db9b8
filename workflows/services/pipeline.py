"""The release pipeline: lanes, steps, retries and the reaper.

Locks are taken in the order ``deployments/locks.py`` states (the lane, then the
release, the audit chain head last). Taking the lane lock serializes every
decision about one lane, so two workers can never start two releases of it, nor
one while a lane operation (scale, decommission) holds it; the database
constraint ``release_one_in_flight_per_lane`` backs that up.

Each step is claimed (a StepRun with a lease) in one short transaction, done
without holding locks, and finished in another. A duplicate delivery finds the
step claimed or the release already moved on and does nothing. The claim is
the step's fencing token: every cluster, DNS and registry write of the step
checks it first (``step_fence``), so a worker that comes back after the reaper
moved on stops at its next write (see ``deployments/fencing.py``). While the
step runs, its worker's heartbeat renews the claim's short lease
(``leases.py``): the reaper re-drives only a step whose worker stopped beating.
"""
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Value
from django.db.models.functions import Concat
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from deployments import builds, registry
from deployments import services as deployments
from deployments.fencing import Fence, StaleClaim
from deployments.manifests import ReleaseConfig
from deployments.specs import DeploySpec
from dns import services as dns
from paas_site.actors import WORKER
from paas_site.correlation import current_correlation_id
from paas_site.errors import ApplicationError, PermanentError, TransientError
from paas_site.metrics import LANE_WAIT, REAPER_ACTIONS, STEP_DURATION, STEP_RETRIES

from .. import audit, planner
from ..choices import IN_FLIGHT, STATE_OF_STEP, STEP_OF_STATE, ReleaseState, Step, StepStatus, WebhookEvent
from ..locks import lane_lock, release_lock
from ..models import FreezeWindow, LaneOperation, Release, StepRun
from . import leases, notifications

logger = logging.getLogger(__name__)


class StepRetry(Exception):
    """The step hit a transient error; run it again in ``countdown`` seconds."""

    def __init__(self, countdown: float, cause: Exception):
        super().__init__(str(cause))
        self.countdown, self.cause = countdown, cause


# -- lanes ------------------------------------------------------------------------
def lane_wait_reason(release: Release, *, now: datetime | None = None) -> str:
    """Why an approved release has not started yet ("" when it may start now)."""
    now = now or timezone.now()
    if release.scheduled_at and release.scheduled_at > now:
        return f"scheduled for {release.scheduled_at:%Y-%m-%d %H:%M} UTC"
    until = planner.frozen_until(freeze_windows(release.environment_id), now)
    if until:
        return f"environment {release.environment.name} is frozen until {until:%Y-%m-%d %H:%M %Z}"
    busy = Release.objects.filter(
        application_id=release.application_id, environment_id=release.environment_id, state__in=IN_FLIGHT
    ).exclude(id=release.id).values_list("id", flat=True).first()
    if busy:
        return f"waiting for release #{busy} in the same lane"
    operation = lane_operation(release.application_id, release.environment_id, now=now)
    if operation:
        return f"waiting for the {operation.kind} of the application (by {operation.actor}) to finish"
    ahead = _queue(release.application_id, release.environment_id, now).exclude(id=release.id).filter(
        approved_at__lt=release.approved_at
    ).values_list("id", flat=True).first()
    return f"queued behind release #{ahead}" if ahead else ""


def freeze_windows(environment_id: int) -> list[planner.Window]:
    windows: list[planner.Window] = []
    for w in FreezeWindow.objects.filter(environment_id=environment_id):
        if w.kind == "weekly":
            windows.append(planner.WeeklyWindow(w.timezone, w.start_weekday, w.start_time, w.end_weekday, w.end_time))
        else:
            windows.append(planner.OneOffWindow(w.starts_at, w.ends_at))
    return windows


def lane_operation(application_id: int, environment_id: int, *, now: datetime | None = None) -> LaneOperation | None:
    """The operation (scale, decommission) holding the lane, unless its claim has expired."""
    return LaneOperation.objects.filter(
        application_id=application_id, environment_id=environment_id, expires_at__gt=now or timezone.now()
    ).first()


def _queue(application_id: int, environment_id: int, now: datetime):
    return Release.objects.filter(
        application_id=application_id, environment_id=environment_id, state=ReleaseState.APPROVED
    ).exclude(scheduled_at__gt=now).order_by("approved_at", "id")


@transaction.atomic
def lane_advance(*, application_id: int, environment_id: int) -> Release | None:
    """Start the oldest approved release of a lane when the lane is free (no release in flight, no lane
    operation) and not frozen. The operation enqueues a lane advance when it ends."""
    lane_lock(application_id)
    if Release.objects.filter(
        application_id=application_id, environment_id=environment_id, state__in=IN_FLIGHT
    ).exists():
        return None
    now = timezone.now()
    if lane_operation(application_id, environment_id, now=now):
        return None
    if planner.frozen_until(freeze_windows(environment_id), now):
        return None
    candidate = _queue(application_id, environment_id, now).first()
    if candidate is None:
        return None
    release = release_lock(candidate.id)
    if not release.resume_step and release.approved_at:  # a retry's wait since its first approval is no lane wait
        waited, environment = (now - release.approved_at).total_seconds(), release.environment.name
        transaction.on_commit(lambda: LANE_WAIT.labels(environment).observe(waited))
    # an expired operation's claim died with its process: drop it, so its fence stops it should it come back
    LaneOperation.objects.filter(application_id=application_id, environment_id=environment_id).delete()
    before = release.state
    release.start()
    release.save()
    audit.release_transitioned(actor=WORKER, release=release, from_state=before, message=f"{release} started")
    _enqueue_step(release)
    return release


def lanes_advance_due() -> int:
    """Beat: try every lane that has approved releases (schedules reached, freezes ended, lost messages)."""
    approved = Release.objects.filter(state=ReleaseState.APPROVED).order_by()
    lanes = approved.values_list("application_id", "environment_id").distinct()
    return sum(lane_advance(application_id=a, environment_id=e) is not None for a, e in lanes)


# -- steps ------------------------------------------------------------------------
@dataclass
class StepOutcome:
    log: list[str]
    fields: dict


def step_run(*, release_id: int, step: str, task_id: str = "", retries: int = 0) -> None:
    """Perform one step of a release; idempotent under duplicate and late deliveries."""
    run = _step_claim(release_id, step, task_id)
    if run is None:
        return
    release = run.release  # as locked and loaded by the claim
    with _step_lease(run) as lease:
        _step_work(run, release, step_fence(run, lease), retries)


def _step_work(run: StepRun, release: Release, fence: "StepFence", retries: int) -> None:
    step = run.step
    try:
        outcome = STEP_WORK[step](release, fence)
    except StaleClaim as exc:
        _step_note_stale(run, exc.message)
        return
    except TransientError as exc:
        if retries >= settings.SLIPWAY_STEP_MAX_RETRIES:
            _step_fail(run, f"{exc} (gave up after {retries + 1} attempts)")
            return
        countdown = retry_delay(retries)
        if _step_note_retry(run, str(exc), countdown):
            raise StepRetry(countdown, exc) from exc
        return
    except (PermanentError, ApplicationError) as exc:
        _step_fail(run, exc.message)
        return
    _step_succeed(run, outcome)


class StepFence:
    """The fencing token of a claimed step: its lease still held, its attempt still the release's current,
    running one. ``sleep`` waits between polls and stops as soon as the lease is lost."""

    def __init__(self, run: StepRun, lease: leases.Lease | None = None):
        self.run, self.lease = run, lease

    def __call__(self, what: str) -> None:
        run = self.run
        if self.lease:
            self.lease.check(what)
        newer = StepRun.objects.filter(release_id=run.release_id, step=run.step, attempt__gt=run.attempt)
        current = StepRun.objects.filter(id=run.id, status=StepStatus.RUNNING,
                                         release__state=STATE_OF_STEP[run.step])
        if not current.filter(~Exists(newer)).exists():
            raise StaleClaim(f"{run.step} attempt {run.attempt} of release #{run.release_id} is no longer the step's "
                             f"claim (reaped or superseded): stopped before {what}")

    def sleep(self, seconds: float) -> None:
        (self.lease.sleep if self.lease else time.sleep)(seconds)

    def still_held(self, what: str) -> None:
        """The lease alone (in memory, no query): for reads such as following a rollout."""
        if self.lease:
            self.lease.check(what)


def step_fence(run: StepRun, lease: leases.Lease | None = None) -> StepFence:
    return StepFence(run, lease)


def _step_lease(run: StepRun) -> leases.Lease:
    """The heartbeat of a claimed step: renews its lease while this attempt holds it, hands it over on stop."""
    mine = StepRun.objects.filter(id=run.id, lease_token=run.lease_token, status=StepStatus.RUNNING)

    def renew() -> bool:
        now = timezone.now()
        return mine.filter(lease_expires_at__gt=now).update(lease_expires_at=now + step_lease()) == 1

    def hand_over() -> bool:
        note = "handed over by its worker, which is stopping (SIGTERM); running the step on another worker"
        if not mine.update(lease_expires_at=timezone.now(), error=note, log=Concat("log", Value(f"{note}\n"))):
            return False
        try:
            _tasks().release_step_task.delay(run.release_id, run.step, current_correlation_id.get())
        except BrokerUnavailable as exc:  # the lease has ended: the reaper re-drives the step instead
            logger.warning("could not enqueue the %s step of release %s again: %s", run.step, run.release_id, exc)
        return True

    return leases.Lease(token=run.lease_token, what=f"{run.step} attempt {run.attempt} of release #{run.release_id}",
                        renew=renew, hand_over=hand_over)


def _step_note_stale(run: StepRun, message: str) -> None:
    """A worker that lost its claim wrote nothing more; say so in its (already finished) attempt's log."""
    logger.warning("%s", message)
    StepRun.objects.filter(id=run.id).update(log=Concat("log", Value(f"{message}\n")))


def retry_delay(retries: int) -> float:
    """Exponential backoff with full jitter, capped."""
    ceiling = min(settings.SLIPWAY_RETRY_MAX_SECONDS, settings.SLIPWAY_RETRY_BASE_SECONDS * 2**retries)
    return random.uniform(ceiling / 2, ceiling)


def step_lease() -> timedelta:
    """How long a claim outlives its worker's last heartbeat."""
    return timedelta(seconds=settings.SLIPWAY_STEP_LEASE_SECONDS)


@transaction.atomic
def _step_claim(release_id: int, step: str, task_id: str) -> StepRun | None:
    release = release_lock(release_id)
    if release.state != STATE_OF_STEP.get(step):
        return None  # a late or duplicate delivery: the release has moved on
    now = timezone.now()
    last = release.steps.filter(step=step).order_by("-attempt").first()
    if last and last.status == StepStatus.RUNNING:
        # a retry of this very task after its run here raised (the database connection was lost): take it over
        ours = bool(task_id) and last.task_id == task_id and leases.ended_here(last.lease_token)
        if last.lease_expires_at and last.lease_expires_at > now and not ours:
            return None  # another worker holds the step (its heartbeat renews the lease): a duplicate delivery
        last.status, last.finished_at = StepStatus.FAILED, now
        last.error = last.error or (
            "interrupted (database connection lost); running the step again" if ours
            else "worker lost (lease expired); running the step again"
        )
        last.save(update_fields=["status", "finished_at", "error"])
    if step == Step.DEPLOY and last is None:
        release.replaced = deployments.revision_live(application=release.application, environment=release.environment)
        release.save(update_fields=["replaced", "updated_at"])
    return StepRun.objects.create(
        release=release, step=step, attempt=(last.attempt + 1) if last else 1, status=StepStatus.RUNNING,
        started_at=now, lease_expires_at=now + step_lease(), task_id=task_id or "", lease_token=leases.new_token(),
    )


@transaction.atomic
def _step_note_retry(run: StepRun, error: str, countdown: float) -> bool:
    """Record the transient error; ``False`` when the step is no longer ours to retry (reaped meanwhile)."""
    release = release_lock(run.release_id)
    run.refresh_from_db()
    if release.state != STATE_OF_STEP[run.step] or run.status != StepStatus.RUNNING:
        return False
    run.status, run.error = StepStatus.RETRYING, error
    run.finished_at = timezone.now()
    run.lease_expires_at = run.finished_at + timedelta(seconds=countdown + settings.SLIPWAY_STEP_LEASE_SECONDS)
    run.log += f"transient error: {error}; retrying in {countdown:.0f}s\n"
    run.save(update_fields=["status", "error", "finished_at", "lease_expires_at", "log"])
    _step_observed(run, "retrying")
    transaction.on_commit(lambda step=run.step: STEP_RETRIES.labels(step).inc())
    return True


@transaction.atomic
def _step_succeed(run: StepRun, outcome: StepOutcome) -> None:
    release = release_lock(run.release_id)
    run.refresh_from_db()
    if release.state != STATE_OF_STEP[run.step] or run.status != StepStatus.RUNNING:
        return  # the reaper or a duplicate finished it meanwhile
    _finish_run(run, StepStatus.SUCCEEDED, outcome.log)
    for name, value in outcome.fields.items():
        setattr(release, name, value)
    audit.step_finished(release=release, step_run=run)
    before = release.state
    NEXT[run.step](release)
    release.save()
    audit.release_transitioned(actor=WORKER, release=release, from_state=before)
    if release.state in IN_FLIGHT:
        _enqueue_step(release)
    else:
        _lane_freed(release)


@transaction.atomic
def _step_fail(run: StepRun, reason: str) -> None:
    release = release_lock(run.release_id)
    run.refresh_from_db()
    if release.state != STATE_OF_STEP[run.step] or run.status not in (StepStatus.RUNNING, StepStatus.RETRYING):
        return
    _finish_run(run, StepStatus.FAILED, [f"failed: {reason}"], error=reason)
    audit.step_finished(release=release, step_run=run)
    release_fail(release, step=run.step, reason=reason)


def release_fail(release: Release, *, step: str, reason: str) -> None:
    """Fail a locked in-flight release; roll back when something may have been deployed."""
    before = release.state
    release.fail(step=step, reason=reason)
    release.save()
    audit.release_transitioned(actor=WORKER, release=release, from_state=before, message=f"{step} failed: {reason}")
    if step in (Step.DEPLOY, Step.VERIFY):
        release.roll_back()
        release.save()
        audit.release_transitioned(
            actor=WORKER, release=release, from_state=ReleaseState.FAILED,
            message=f"rolling back to {release.replaced or 'nothing (first deploy: removing the objects)'}",
        )
        _enqueue_step(release)
    else:
        _lane_freed(release)


def _finish_run(run: StepRun, status: str, log: list[str], error: str = "") -> None:
    run.status, run.finished_at, run.error = status, timezone.now(), error
    run.log += "".join(f"{line}\n" for line in log)
    run.save(update_fields=["status", "finished_at", "error", "log"])
    _step_observed(run, status)


def _step_observed(run: StepRun, outcome: str) -> None:
    """Once the attempt's end is committed, observe its duration (``paas_site.metrics``)."""
    step, seconds = run.step, max(0.0, (run.finished_at - run.started_at).total_seconds())
    transaction.on_commit(lambda: STEP_DURATION.labels(step, outcome).observe(seconds))


def _lane_freed(release: Release) -> None:
    event = {
        ReleaseState.SUCCEEDED: WebhookEvent.SUCCEEDED, ReleaseState.FAILED: WebhookEvent.FAILED,
        ReleaseState.ROLLED_BACK: WebhookEvent.ROLLED_BACK,
    }.get(release.state)
    if event:
        notifications.release_notify(release=release, event=event)
    lane_advance_if_queued(application_id=release.application_id, environment_id=release.environment_id)


def lane_advance_if_queued(*, application_id: int, environment_id: int) -> None:
    """The lane frees (a release or an operation ended): let the next approved release start after the commit.

    Call under the lane lock: a release approved after this commit enqueues its own lane advance.
    """
    if _queue(application_id, environment_id, timezone.now()).exists():
        transaction.on_commit(lambda: _tasks().lane_advance_task.delay(application_id, environment_id))


def lane_advance_on_commit(release: Release) -> None:
    """Once the transaction commits, let a worker start the next release of the lane."""
    application_id, environment_id = release.application_id, release.environment_id
    transaction.on_commit(lambda: _tasks().lane_advance_task.delay(application_id, environment_id))


def _enqueue_step(release: Release) -> None:
    step, release_id, correlation = STEP_OF_STATE[release.state], release.id, current_correlation_id.get()
    transaction.on_commit(lambda: _tasks().release_step_task.delay(release_id, step, correlation))


def _tasks():
    from .. import tasks  # tasks import the services; import them late to avoid a cycle

    return tasks


# -- the work of each step (outside any transaction) -------------------------------
def _build(release: Release, fence: Fence) -> StepOutcome:
    """Build or pin the image and check the DNS name: everything that can fail before the cluster is touched.

    Everything comes from the release's snapshot: a prebuilt image was pinned
    to its digest at filing, a built one is layered onto the base image digest
    frozen then.
    """
    spec = _spec(release)
    if release.builds_image:
        log, digest = _image_build(release, spec, fence)
    elif release.image_digest:
        digest = release.image_digest
        if "@" not in release.image:  # resolved from a tag at filing: still there, whatever the tag says now
            registry.digest_confirm(release.image, digest)
        log = [f"image {release.image} pinned to {digest} when the release was filed"]
    else:  # filed before releases pinned at filing (or a digest reference): resolving is harmless
        digest = registry.resolve_digest(release.image)
        log = [f"image {release.image} pinned to {digest}"]
    name = dns.dns_name_check(application_id=release.application_id, environment_id=release.environment_id)
    if name and spec.exposed and not release.rollback_to_id and name != spec.hostname:
        raise PermanentError(f"the DNS name of {spec.application} is {name} now, not {spec.hostname} as when the "
                             "release was filed; file it again")
    if name:
        log.append(f"DNS name {name} is free or already ours")
    return StepOutcome(log, {"image_digest": digest})


def _spec(release: Release) -> DeploySpec:
    spec = release.spec
    if spec is None:
        raise PermanentError(f"release #{release.id} has no snapshot of what to run; file it again")
    return spec


def _image_build(release: Release, spec: DeploySpec, fence: Fence) -> tuple[list[str], str]:
    """Fetch the package and push the built image to the release's repository; the same inputs, the same digest."""
    config = release.config or {}
    with deployments.package_fetch(package_id=release.package_id, url=release.package_url,
                                   sha256=release.package_sha256) as package:
        built = deployments.application_image_build(
            base_image=spec.base_image, repository=release.image, version=release.version, package=package,
            config_files=config.get("files", {}), env=config.get("env", {}),
            labels=builds.release_labels(version=release.version, release_id=release.id, commit=release.commit),
            fence=fence,
        )
    return [f"package {package.name}: {package.size} bytes, sha256 {package.sha256}", *built.log], built.digest


def _deploy(release: Release, fence: Fence) -> StepOutcome:
    application, environment = release.application, release.environment
    if release.rollback_to_id:
        revision = deployments.deployment_rollback(
            application_id=application.id, environment_id=environment.id, to_revision_id=release.rollback_to_id,
            release=str(release.id), fence=fence,
        )
        log = [f"re-applied revision #{release.rollback_to.number} as #{revision.number}"]
        return StepOutcome(log + _dns_sync(release, revision.manifests, fence), {"revision": revision})
    revision = deployments.deployment_apply(
        application_id=application.id, environment_id=environment.id, spec=_spec(release),
        image=release.pinned_image,
        config=ReleaseConfig(env=release.config.get("env", {}), files=release.config.get("files", {})),
        release=str(release.id), fence=fence,
    )
    kinds = ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in revision.manifests)
    return StepOutcome([f"applied revision #{revision.number}: {kinds}", *_dns_sync(release, revision.manifests, fence)],
                       {"revision": revision})


def _dns_sync(release: Release, manifests: list[dict], fence: Fence) -> list[str]:
    """Publish the application's name while it has an Ingress; withdraw it otherwise."""
    lane = {"application_id": release.application_id, "environment_id": release.environment_id, "fence": fence}
    if any(obj["kind"] == "Ingress" for obj in manifests):
        record = dns.dns_publish(**lane)
        return [f"DNS {record.name} {record.type} {record.content}"] if record else []
    dns.dns_unpublish(**lane)
    return []


def _verify(release: Release, fence: StepFence) -> StepOutcome:
    """Reads only (the rollout, the smoke check): nothing to fence; it stops at the next rollout status or poll
    once the lease is lost, and finishing it checks the claim."""
    status = deployments.deployment_verify(
        revision_id=release.revision_id, poll_interval=settings.SLIPWAY_VERIFY_POLL_SECONDS, sleep=fence.sleep,
        still_held=fence.still_held,
    )
    return StepOutcome([status.message], {})


def _rollback(release: Release, fence: Fence) -> StepOutcome:
    revision = deployments.deployment_rollback(
        application_id=release.application_id, environment_id=release.environment_id,
        to_revision_id=release.replaced_id, release=str(release.id), fence=fence,
    )
    dns_log = _dns_sync(release, release.replaced.manifests if release.replaced_id else [], fence)
    if revision is None:
        return StepOutcome(["nothing was running before: nothing to remove", *dns_log], {})
    if release.replaced_id is None:
        return StepOutcome([f"first deploy failed: removed its objects (revision #{revision.number})", *dns_log], {})
    return StepOutcome([f"restored revision #{release.replaced.number} as #{revision.number}", *dns_log], {})


STEP_WORK: dict[str, Callable[[Release, StepFence], StepOutcome]] = {
    Step.BUILD: _build, Step.DEPLOY: _deploy, Step.VERIFY: _verify, Step.ROLLBACK: _rollback,
}
NEXT: dict[str, Callable[[Release], None]] = {
    Step.BUILD: Release.deploy, Step.DEPLOY: Release.verify, Step.VERIFY: Release.succeed,
    Step.ROLLBACK: Release.finish_rollback,
}


# -- the reaper ---------------------------------------------------------------------
def steps_reap() -> int:
    """Beat: re-drive steps whose worker died, and fail releases stuck past the limit."""
    now = timezone.now()
    redriven = 0
    for release in Release.objects.filter(state__in=IN_FLIGHT).select_related("environment"):
        step = STEP_OF_STATE[release.state]
        last = release.steps.filter(step=step).order_by("-attempt").first()
        if release.started_at and now - release.started_at > timedelta(seconds=_in_flight_limit(step)):
            if _give_up_stuck(release.id, step):
                REAPER_ACTIONS.labels("failed_stuck").inc()
            continue
        if last is None or (last.lease_expires_at and last.lease_expires_at <= now):
            with transaction.atomic():
                _enqueue_step(release)
            redriven += 1
            REAPER_ACTIONS.labels("redriven").inc()
    return redriven


def _in_flight_limit(step: str) -> int:
    """Seconds a release may be in flight. A rollback gets a second budget: one that inherited the
    failed release's (say, after the reaper failed it) would be failed at once and leave the
    failed release's objects in the cluster."""
    return settings.SLIPWAY_RELEASE_MAX_SECONDS * (2 if step == Step.ROLLBACK else 1)


def _duration_text(seconds: int) -> str:
    """``3 seconds``, ``1 minute``, ``2 hours``: the largest unit that divides evenly, in words."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


@transaction.atomic
def _give_up_stuck(release_id: int, step: str) -> bool:
    release = release_lock(release_id)
    if release.state not in IN_FLIGHT or STEP_OF_STATE[release.state] != step:
        return False
    reason = f"stuck in {release.state}: in flight for over {_duration_text(_in_flight_limit(step))}; failed by the reaper"
    release.steps.filter(step=step, status__in=[StepStatus.RUNNING, StepStatus.RETRYING]).update(
        status=StepStatus.FAILED, finished_at=timezone.now(), error=reason
    )
    release_fail(release, step=step, reason=reason)
    return True
