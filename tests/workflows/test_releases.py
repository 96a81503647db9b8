"""Filing, approval policies, lanes, freezes and the CI hook (services and API, no worker)."""
import threading
from datetime import time, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.models import Environment
from tests.deployments.factories import ApplicationFactory, ClusterFactory, MembershipFactory, UserFactory
from tests.workflows.factories import PINNED, ci_token_row, file_release
from workflows import services
from workflows.audit import chain_verify
from workflows.models import Approval, CiToken, FreezeWindow, Release
from workflows.services import pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def prod(db):
    return Environment.objects.create(name="prod", cluster=ClusterFactory(), required_approvals=2)


@pytest.fixture
def dev(db):
    return Environment.objects.create(name="dev", cluster=ClusterFactory(), required_approvals=0)


@pytest.fixture
def app(project):
    return ApplicationFactory(project=project, name="api", image="registry.example.com/shop/api")


@pytest.fixture
def approvers(project):
    return [MembershipFactory(project=project, role="approver", user=UserFactory(username=f"appr{i}")).user
            for i in (1, 2)]


def body(app, environment="prod", **extra):
    return {"application": app.id, "environment": environment, "version": "1.0",
            "image": PINNED.format(version="1.0"), **extra}


# -- filing ---------------------------------------------------------------------------
def test_filing_for_prod_waits_for_approval(api, developer, app, prod):
    response = api.as_user(developer).post("/api/v1/releases/", body(app), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["state"] == "requested"
    assert response.json()["approvals_required"] == 2


def test_filing_for_dev_is_approved_by_policy(api, developer, app, dev, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.as_user(developer).post("/api/v1/releases/", body(app, "dev"), format="json")

    assert response.status_code == 201
    assert response.json()["state"] == "approved"
    assert callbacks, "the lane is advanced once the filing commits"


def test_image_defaults_to_the_application_repository_and_is_pinned_at_filing(developer, project, prod, registry):
    app = ApplicationFactory(project=project, name="web", image=f"{registry.host}/shop/web")
    digest = registry.push_image("shop/web", "2.1")

    release = services.release_file(actor=developer, application=app, environment=prod, version="2.1")

    assert (release.image, release.image_digest) == (f"{registry.host}/shop/web:2.1", digest)


@pytest.mark.parametrize(("change", "field"), [
    ({"config": {"env": {"PORT": 8080}}}, "config.env.PORT"),
    ({"config": {"env": {"1BAD": "x"}}}, "config.env.1BAD"),
    ({"config": {"files": {"../etc/passwd": "x"}}}, "config.files.../etc/passwd"),
    ({"config": {"files": {"a/b": "x"}}}, "config.files.a/b"),
    ({"config": {"files": {"big": "x" * 300_000}}}, "config"),
    ({"config": ["not", "an", "object"]}, "config"),
    ({"config": {"secrets": {}}}, "config"),
    ({"config": {"env": []}}, "config.env"),
    ({"config": {"env": {"NAME\n": "x"}}}, "config.env.NAME\n"),
    ({"config": {"files": {".": "x"}}}, "config.files.."),
    ({"config": {"files": {"app.conf\n": "x"}}}, "config.files.app.conf\n"),
    ({"version": "1.0; rm -rf /"}, "version"),
    ({"version": "1.0-ü"}, "version"),
    ({"image": "Not An Image"}, "image"),
    ({"image": "registry.example.com/shop/api:ü"}, "image"),
    ({"scheduled_at": "9999-12-31T23:59:59-12:00"}, "scheduled_at"),
    ({"environment": "nowhere"}, "environment"),
    ({"application": 999999}, "application"),
])
def test_bad_filings_are_a_400_naming_the_field_and_save_nothing(api, developer, app, prod, change, field):
    response = api.as_user(developer).post("/api/v1/releases/", {**body(app), **change}, format="json")

    assert response.status_code == 400, response.json()
    assert field in response.json()["extra"]["fields"]
    assert not Release.objects.exists()


def test_another_projects_application_is_not_a_choice(api, outsider, app, prod):
    response = api.as_user(outsider).post("/api/v1/releases/", body(app), format="json")
    assert response.status_code == 400 and "application" in response.json()["extra"]["fields"]


def test_approvers_cannot_file(api, approvers, app, prod):
    response = api.as_user(approvers[0]).post("/api/v1/releases/", body(app), format="json")
    assert response.status_code == 403


# -- approvals -------------------------------------------------------------------------
def test_two_approvals_approve(api, developer, approvers, app, prod):
    release = file_release(actor=developer, application=app, environment=prod)

    first = api.as_user(approvers[0]).post(f"/api/v1/releases/{release.id}/approve/", {"comment": "ok"}, format="json")
    second = api.as_user(approvers[1]).post(f"/api/v1/releases/{release.id}/approve/", {}, format="json")

    assert first.json()["state"] == "requested" and first.json()["approvals_given"] == 1
    assert second.json()["state"] == "approved"
    assert chain_verify()[2] == ""


def test_self_approval_is_refused_with_the_reason(api, project, app, prod):
    maintainer = MembershipFactory(project=project, role="maintainer").user
    release = file_release(actor=maintainer, application=app, environment=prod)

    response = api.as_user(maintainer).post(f"/api/v1/releases/{release.id}/approve/", {}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "self_approval"
    assert not Approval.objects.exists()


def test_self_approval_when_the_environment_allows_it(project, app, prod):
    prod.allow_self_approval, prod.required_approvals = True, 1
    prod.save()
    maintainer = MembershipFactory(project=project, role="maintainer").user
    release = file_release(actor=maintainer, application=app, environment=prod)

    assert services.approval_grant(release_id=release.id, actor=maintainer).state == "approved"


def test_approving_twice_is_a_409_and_counts_once(api, developer, approvers, app, prod):
    release = file_release(actor=developer, application=app, environment=prod)
    client = api.as_user(approvers[0])

    client.post(f"/api/v1/releases/{release.id}/approve/", {}, format="json")
    again = client.post(f"/api/v1/releases/{release.id}/approve/", {}, format="json")

    assert again.status_code == 409 and again.json()["code"] == "already_decided"
    assert release.approvals.count() == 1
    release.refresh_from_db()
    assert release.state == "requested"


def test_developers_cannot_approve(api, developer, app, prod, project):
    other_dev = MembershipFactory(project=project, role="developer").user
    release = file_release(actor=developer, application=app, environment=prod)
    response = api.as_user(other_dev).post(f"/api/v1/releases/{release.id}/approve/", {}, format="json")
    assert response.status_code == 403


def test_any_rejection_rejects_and_later_approvals_conflict(api, developer, approvers, app, prod):
    release = file_release(actor=developer, application=app, environment=prod)

    rejected = api.as_user(approvers[0]).post(f"/api/v1/releases/{release.id}/reject/", {"comment": "no"}, format="json")
    late = api.as_user(approvers[1]).post(f"/api/v1/releases/{release.id}/approve/", {}, format="json")

    assert rejected.json()["state"] == "rejected"
    assert late.status_code == 409 and late.json()["extra"]["state"] == "rejected"


def test_cancelled_releases_cannot_be_approved(api, developer, approvers, app, prod):
    release = file_release(actor=developer, application=app, environment=prod)
    assert api.as_user(developer).post(f"/api/v1/releases/{release.id}/cancel/").json()["state"] == "cancelled"
    response = api.as_user(approvers[0]).post(f"/api/v1/releases/{release.id}/approve/", {}, format="json")
    assert response.status_code == 409


def test_changing_a_release_voids_earlier_approvals(developer, approvers, app, prod):
    release = file_release(actor=developer, application=app, environment=prod)
    services.approval_grant(release_id=release.id, actor=approvers[0])

    services.release_change(release_id=release.id, actor=developer, config={"env": {"FEATURE": "on"}})
    services.approval_grant(release_id=release.id, actor=approvers[1])

    release.refresh_from_db()
    assert release.state == "requested", "the first approval was for other config"
    assert release.approvals.filter(voided_at__isnull=False).count() == 1
    assert services.approval_grant(release_id=release.id, actor=approvers[0]).state == "approved"


def test_non_members_see_404(api, outsider, developer, app, prod):
    release = file_release(actor=developer, application=app, environment=prod)
    client = api.as_user(outsider)
    assert client.get(f"/api/v1/releases/{release.id}/").status_code == 404
    assert client.post(f"/api/v1/releases/{release.id}/approve/").status_code == 404
    assert client.get("/api/v1/releases/").json()["count"] == 0


# -- lanes, freezes, schedules ------------------------------------------------------------
def approved(developer, app, dev, version="1.0", **fields) -> Release:
    return file_release(actor=developer, application=app, environment=dev, version=version, **fields)


def test_a_busy_lane_queues_fifo(api, developer, app, dev):
    first, second = approved(developer, app, dev, "1.0"), approved(developer, app, dev, "1.1")

    assert pipeline.lane_advance(application_id=app.id, environment_id=dev.id) == first
    assert pipeline.lane_advance(application_id=app.id, environment_id=dev.id) is None

    second.refresh_from_db()
    assert second.state == "approved"
    detail = api.as_user(developer).get(f"/api/v1/releases/{second.id}/").json()
    assert detail["waiting_reason"] == f"waiting for release #{first.id} in the same lane"


def test_the_database_refuses_two_in_flight_releases_per_lane(developer, app, dev):
    first, second = approved(developer, app, dev, "1.0"), approved(developer, app, dev, "1.1")
    pipeline.lane_advance(application_id=app.id, environment_id=dev.id)
    second.start()
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()
    assert Release.objects.get(id=first.id).state == "building"


def test_a_frozen_environment_holds_approved_releases(api, developer, app, dev):
    now = timezone.now()
    FreezeWindow.objects.create(environment=dev, kind="once", starts_at=now - timedelta(hours=1),
                                ends_at=now + timedelta(hours=2), reason="year-end")
    release = approved(developer, app, dev)

    assert pipeline.lane_advance(application_id=app.id, environment_id=dev.id) is None
    assert "is frozen until" in api.as_user(developer).get(f"/api/v1/releases/{release.id}/").json()["waiting_reason"]


def test_a_weekly_freeze_that_is_not_now_does_not_hold(developer, app, dev):
    now = timezone.now()
    later = (now + timedelta(hours=3)).time()
    FreezeWindow.objects.create(environment=dev, kind="weekly", start_weekday=(now.weekday() + 2) % 7,
                                start_time=time(0), end_weekday=(now.weekday() + 2) % 7, end_time=later)
    approved(developer, app, dev)
    assert pipeline.lane_advance(application_id=app.id, environment_id=dev.id) is not None


def test_a_scheduled_release_waits_for_its_time(developer, app, dev):
    release = approved(developer, app, dev, scheduled_at=timezone.now() + timedelta(hours=1))
    assert pipeline.lane_advance(application_id=app.id, environment_id=dev.id) is None
    assert pipeline.lane_wait_reason(release).startswith("scheduled for")


# -- CI hook ---------------------------------------------------------------------------
def test_ci_hook_files_a_release(api, project, app, dev, developer, django_capture_on_commit_callbacks):
    token = ci_token_row(project=project, owner=developer)
    with django_capture_on_commit_callbacks(execute=False):
        response = api.post("/api/v1/hooks/ci/shop/", {**body(app, "dev"), "application": "api"}, format="json",
                            HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 201, response.json()
    release = Release.objects.get()
    assert (release.requested_via, release.requested_by, release.state) == ("ci", developer, "approved")
    assert CiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize("header", ["", "Bearer wrong", "Token whatever"])
def test_ci_hook_without_a_valid_token_is_401(api, project, app, dev, developer, header):
    ci_token_row(project=project, owner=developer)
    response = api.post("/api/v1/hooks/ci/shop/", {**body(app, "dev"), "application": "api"}, format="json",
                        HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert not Release.objects.exists()


def test_ci_hook_for_an_unknown_application_is_400(api, project, dev, developer):
    token = ci_token_row(project=project, owner=developer)
    response = api.post("/api/v1/hooks/ci/shop/", {"application": "ghost", "environment": "dev", "version": "1"},
                        format="json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 400 and "application" in response.json()["extra"]["fields"]


# -- audit API -------------------------------------------------------------------------
def test_audit_endpoint_filters_by_release_and_hides_other_projects(api, developer, outsider, app, prod):
    release = file_release(actor=developer, application=app, environment=prod)

    mine = api.as_user(developer).get(f"/api/v1/audit/?release={release.id}").json()
    theirs = api.as_user(outsider).get("/api/v1/audit/").json()

    assert [e["action"] for e in mine["results"]] == ["release.requested"]
    assert theirs["count"] == 0
    assert api.as_user(developer).get(f"/api/v1/releases/{release.id}/audit/").json()["count"] == 1


def test_the_release_list_pages_without_distinct_and_counts_without_the_approvals(api, developer, approvers, app, prod):
    release = file_release(actor=developer, application=app, environment=prod)
    services.approval_grant(release_id=release.id, actor=approvers[0])
    file_release(actor=developer, application=app, environment=prod, version="1.1")

    with CaptureQueriesContext(connection) as queries:
        response = api.as_user(developer).get("/api/v1/releases/?state=requested&state=approved")

    assert [r["approvals_given"] for r in response.json()["results"]] == [0, 1]
    releases = [q["sql"] for q in queries.captured_queries if "workflows_release" in q["sql"]]
    count = next(sql for sql in releases if sql.startswith("SELECT COUNT(*)"))
    # at 100,000 releases both cost a pass over every release (bench/api_scale.py)
    assert "workflows_approval" not in count
    assert not any("DISTINCT" in sql for sql in releases)


# -- races -----------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_the_same_moment_make_exactly_one_transition(project, app, worker):
    prod = Environment.objects.create(name="prod", cluster=ClusterFactory(), required_approvals=1)
    developer = MembershipFactory(project=project, role="developer").user
    approvers = [MembershipFactory(project=project, role="approver").user for _ in range(2)]
    # scheduled later: the worker (drained before the flush) must not start it against a cluster that is not there
    release = file_release(actor=developer, application=app, environment=prod,
                           scheduled_at=timezone.now() + timedelta(hours=1))
    barrier, outcomes = threading.Barrier(2), []

    def approve(user):
        barrier.wait()
        try:
            services.approval_grant(release_id=release.id, actor=user)
            outcomes.append("ok")
        except Exception as exc:  # noqa: BLE001 (collected and asserted below)
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(user,)) for user in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    release.refresh_from_db()
    assert release.state == "approved"
    transitions = release_transitions(release)
    assert transitions == ["requested→approved"], (outcomes, transitions)
    assert chain_verify()[2] == ""


@pytest.mark.django_db(transaction=True)
def test_a_worker_holding_a_release_does_not_block_filing_in_the_same_environment(project, developer, app, prod):
    other = ApplicationFactory(project=project, name="web", image="registry.example.com/shop/web")
    # prod needs approvals: nothing is enqueued for the session's worker to run while the test data is flushed
    held = file_release(actor=developer, application=app, environment=prod)
    locked, done = threading.Event(), threading.Event()

    def step_holding_its_release():  # as a step does between claiming and finishing its transaction
        try:
            with transaction.atomic():
                pipeline.release_lock(held.id)
                locked.set()
                done.wait(10)
        finally:
            connection.close()

    # given a worker holding the lock of a release to prod
    thread = threading.Thread(target=step_holding_its_release)
    thread.start()
    assert locked.wait(10)
    try:
        # when a release of another application is filed to prod meanwhile
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        filed = file_release(actor=developer, application=other, environment=prod)
    finally:
        done.set()
        thread.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    # then it commits at once: the environment row is not locked by the worker
    filed.refresh_from_db()
    assert filed.state == "requested"


def release_transitions(release) -> list[str]:
    from workflows.models import AuditEvent

    return [f"{e.from_state}→{e.to_state}" for e in AuditEvent.objects.filter(
        release_id=release.id, action="release.transitioned")]


# -- the reaper --------------------------------------------------------------------------
def test_the_reaper_redrives_a_step_nobody_holds(developer, app, dev, django_capture_on_commit_callbacks):
    approved(developer, app, dev)
    started = pipeline.lane_advance(application_id=app.id, environment_id=dev.id)  # its task message was lost

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert pipeline.steps_reap() == 1
    assert len(callbacks) == 1
    assert Release.objects.get(id=started.id).state == "building"


def test_the_reaper_fails_a_release_stuck_past_the_limit(developer, app, dev, settings,
                                                         django_capture_on_commit_callbacks):
    settings.SLIPWAY_RELEASE_MAX_SECONDS = 60
    approved(developer, app, dev)
    started = pipeline.lane_advance(application_id=app.id, environment_id=dev.id)
    Release.objects.filter(id=started.id).update(started_at=timezone.now() - timedelta(minutes=5))

    with django_capture_on_commit_callbacks(execute=False):
        pipeline.steps_reap()

    started.refresh_from_db()
    assert started.state == "failed"
    assert started.failure_reason == "stuck in building: in flight for over 1 minute; failed by the reaper"


def test_a_rollback_gets_a_budget_of_its_own(developer, app, dev, settings, django_capture_on_commit_callbacks):
    settings.SLIPWAY_RELEASE_MAX_SECONDS = 60
    approved(developer, app, dev)
    started = pipeline.lane_advance(application_id=app.id, environment_id=dev.id)
    Release.objects.filter(id=started.id).update(state="deploying", started_at=timezone.now() - timedelta(seconds=90))

    with django_capture_on_commit_callbacks(execute=False):
        pipeline.steps_reap()  # fails the deploy: the rollback starts
        pipeline.steps_reap()  # the rollback is within its own budget
    started.refresh_from_db()
    assert (started.state, started.failure_reason) == (
        "rolling_back", "stuck in deploying: in flight for over 1 minute; failed by the reaper")

    Release.objects.filter(id=started.id).update(started_at=timezone.now() - timedelta(seconds=121))
    with django_capture_on_commit_callbacks(execute=False):
        pipeline.steps_reap()
    started.refresh_from_db()
    assert (started.state, started.failed_step) == ("failed", "rollback")
    assert started.failure_reason == "stuck in rolling_back: in flight for over 2 minutes; failed by the reaper"


def test_a_retried_release_gets_the_full_budget_again(developer, app, dev, settings, django_capture_on_commit_callbacks):
    settings.SLIPWAY_RELEASE_MAX_SECONDS = 60
    approved(developer, app, dev)
    started = pipeline.lane_advance(application_id=app.id, environment_id=dev.id)
    Release.objects.filter(id=started.id).update(started_at=timezone.now() - timedelta(hours=3))
    with django_capture_on_commit_callbacks(execute=False):
        pipeline.steps_reap()
    assert Release.objects.get(id=started.id).state == "failed"

    with django_capture_on_commit_callbacks(execute=False):
        services.release_retry(release_id=started.id, actor=developer)
        pipeline.lane_advance(application_id=app.id, environment_id=dev.id)
        pipeline.steps_reap()

    assert Release.objects.get(id=started.id).state == "building"


@pytest.mark.parametrize("waiting", [0, 1])
def test_a_finished_release_wakes_its_lane_only_when_a_release_waits_in_it(
    developer, app, dev, settings, django_capture_on_commit_callbacks, waiting
):
    settings.SLIPWAY_RELEASE_MAX_SECONDS = 60
    approved(developer, app, dev)
    started = pipeline.lane_advance(application_id=app.id, environment_id=dev.id)
    for n in range(waiting):
        approved(developer, app, dev, version=f"1.{n + 1}")
    Release.objects.filter(id=started.id).update(started_at=timezone.now() - timedelta(minutes=5))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        pipeline.steps_reap()  # fails the stuck release: its lane is free

    assert Release.objects.get(id=started.id).state == "failed"
    lane_advances = [callback for callback in callbacks if "lane_advance" in callback.__qualname__]
    assert len(lane_advances) == waiting  # the lane advance task, only when it has something to start


def test_a_late_duplicate_step_delivery_does_nothing(developer, app, dev):
    approved(developer, app, dev)
    started = pipeline.lane_advance(application_id=app.id, environment_id=dev.id)

    pipeline.step_run(release_id=started.id, step="deploy")  # the release is building, not deploying

    assert not started.steps.exists()


def test_the_beat_starts_releases_whose_time_came(developer, app, dev, django_capture_on_commit_callbacks):
    release = approved(developer, app, dev, scheduled_at=timezone.now() + timedelta(hours=1))
    approved(developer, app, dev, version="1.1", scheduled_at=timezone.now() + timedelta(hours=1))
    assert pipeline.lanes_advance_due() == 0

    Release.objects.filter(id=release.id).update(scheduled_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=False):
        assert pipeline.lanes_advance_due() == 1

    assert Release.objects.get(id=release.id).state == "building"


def test_cost_impact_is_computed_when_filed_and_shown_to_approvers(api, developer, approvers, app, prod):
    from decimal import Decimal

    from billing.models import PriceBook

    PriceBook.objects.create(
        name="prod 2026", environment=prod, currency="EUR", valid_from=timezone.now() - timedelta(days=1),
        cpu_core_hour=Decimal("0.04"), memory_gib_hour=Decimal("0.005"),
    )
    app.replicas, app.cpu_request, app.memory_request = 2, "500m", "1Gi"
    app.save()

    release = file_release(actor=developer, application=app, environment=prod)

    impact = api.as_user(approvers[0]).get(f"/api/v1/releases/{release.id}/").json()["cost_impact"]
    # 730 h × (2 × 0.5 cores × 0.04 + 2 × 1 GiB × 0.005) = 730 × 0.05 = 36.50
    assert impact["priced"] is True and impact["currency"] == "EUR"
    assert Decimal(impact["proposed"]["monthly_cost"]) == Decimal("36.50")
    assert Decimal(impact["current"]["monthly_cost"]) == Decimal("0")


def test_budget_alerts_go_to_the_project_webhooks_once(project, django_capture_on_commit_callbacks):
    from datetime import date
    from decimal import Decimal

    from billing.models import Budget, BudgetAlert
    from workflows.models import ProjectWebhook
    from workflows.services.notifications import budget_alerts_notify

    ProjectWebhook.objects.create(project=project, url="https://hooks.example.com/a", secret="s",
                                  events=["budget.threshold_reached"])
    ProjectWebhook.objects.create(project=project, url="https://hooks.example.com/b", secret="s", events=["failed"])
    budget = Budget.objects.create(project=project, month=date(2026, 11, 1), amount=Decimal("100"), currency="EUR")
    BudgetAlert.objects.create(budget=budget, threshold=80, spent=Decimal("81"), budget_amount=Decimal("100"),
                               currency="EUR")

    with django_capture_on_commit_callbacks(execute=False) as first:
        assert budget_alerts_notify() == 1
    with django_capture_on_commit_callbacks(execute=False) as second:
        assert budget_alerts_notify() == 0

    assert len(first) == 2 and not second  # the webhook deliveries and the notification's fan-out, once
    assert BudgetAlert.objects.get().notified_at is not None
