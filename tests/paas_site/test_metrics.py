"""/healthz, /readyz and /metrics: answers, protection, the state figures and what they cost."""
from datetime import timedelta

import pytest
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from billing.models import MeteringGap
from deployments import registry
from paas_site import health
from paas_site.celery import app as celery_app
from paas_site.errors import TransientError
from paas_site.metrics import call_errors_counted
from tests.deployments.factories import ApplicationFactory, ClusterFactory, EnvironmentFactory
from tests.reliability.conftest import free_port
from tests.workflows.factories import file_release
from workflows.metrics import audit_families
from workflows.models import DeliveryAttempt, Notification, NotificationDelivery, Release
from workflows.services.checkpoints import audit_checkpoint_write

TOKEN = "metrics-test-token-" + "m" * 24


def samples(body: bytes) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a text exposition (the parser fails on malformed output)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


@pytest.fixture
def metrics_token(settings):
    settings.SLIPWAY_METRICS_TOKEN, settings.SLIPWAY_METRICS_OPEN = TOKEN, False
    return TOKEN


def scrape(token: str = TOKEN) -> bytes:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return response.content


# -- probes ---------------------------------------------------------------------------------
def test_healthz_answers_any_host_over_plain_http_without_credentials(settings):
    # a kubelet probes the pod by its IP, over HTTP, even where HTTPS is enforced
    settings.SECURE_SSL_REDIRECT, settings.ALLOWED_HOSTS = True, ["slipway.example.com"]
    response = Client().get("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert Client().post("/healthz").status_code == 405


@pytest.mark.django_db
def test_readyz_is_ok_when_the_database_is_migrated_and_the_broker_answers():
    response = Client().get("/readyz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_readyz_names_an_unreachable_broker_and_never_shows_its_url(monkeypatch):
    # given a broker URL with a password, on a port where nothing listens
    monkeypatch.setattr(celery_app.conf, "broker_write_url", f"redis://:hunter2secret@127.0.0.1:{free_port()}/0")
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("unreachable (")
    assert "hunter2secret" not in response.content.decode() and "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_names_unapplied_migrations(monkeypatch):
    # given the database lacks the newest migration of an app (its record removed, rolled back after the test)
    monkeypatch.setattr(health, "_migrated", set())
    newest = MigrationRecorder.Migration.objects.filter(app="workflows").order_by("-name").first()
    newest.delete()
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "1 migration(s) not applied (run manage.py migrate)", "broker": "ok"}


# -- /metrics protection --------------------------------------------------------------------
@pytest.mark.django_db
def test_metrics_are_closed_without_a_token_unless_a_network_policy_is_declared(settings):
    settings.SLIPWAY_METRICS_TOKEN, settings.SLIPWAY_METRICS_OPEN = "", False
    response = Client().get("/metrics")
    assert response.status_code == 403
    assert "SLIPWAY_METRICS_TOKEN" in response.json()["message"]
    settings.SLIPWAY_METRICS_OPEN = True
    assert Client().get("/metrics").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(("authorization", "status"), [
    ("", 401), ("Basic " + "x" * 20, 401), ("Bearer", 401), ("Bearer wrong-token", 403),
    (f"Bearer {TOKEN}x", 403), (f"Bearer {TOKEN[:-1]}", 403), (f"Token {TOKEN}", 401), (f"Bearer {TOKEN}", 200),
])
def test_metrics_need_the_bearer_token(metrics_token, authorization, status):
    response = Client().get("/metrics", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == status
    if status != 200:
        assert TOKEN not in response.content.decode()
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")


# -- state figures --------------------------------------------------------------------------
@pytest.fixture
def two_environments(project, developer):
    cluster = ClusterFactory(name="c1")
    dev = EnvironmentFactory(name="dev", cluster=cluster, required_approvals=0)
    prod = EnvironmentFactory(name="prod", cluster=cluster, required_approvals=1)
    return developer, dev, prod


def app(name: str):
    from deployments.models import Project

    return ApplicationFactory(project=Project.objects.get(slug="shop"), name=name)


@pytest.mark.django_db
def test_releases_approvals_and_lane_waits_are_counted_from_the_database(metrics_token, two_environments,
                                                                          django_capture_on_commit_callbacks):
    developer, dev, prod = two_environments
    # given two releases awaiting approval in prod (the older filed an hour ago) and one approved in dev
    old = file_release(actor=developer, application=app("a1"), environment=prod)
    Release.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(hours=1))
    file_release(actor=developer, application=app("a2"), environment=prod)
    with django_capture_on_commit_callbacks(execute=False):  # approved at once (0 approvals); no worker here
        file_release(actor=developer, application=app("a3"), environment=dev)
    # when Prometheus scrapes
    figures = samples(scrape())
    # then
    assert figures[("slipway_releases", (("environment", "prod"), ("state", "requested")))] == 2
    assert figures[("slipway_releases", (("environment", "dev"), ("state", "approved")))] == 1
    assert figures[("slipway_approvals_pending", (("environment", "prod"),))] == 2
    assert 3590 < figures[("slipway_approval_oldest_pending_seconds", (("environment", "prod"),))] < 3700
    assert figures[("slipway_lane_queued_releases", (("environment", "dev"),))] == 1
    assert ("slipway_approvals_pending", (("environment", "dev"),)) not in figures


@pytest.mark.django_db
def test_audit_checkpoint_age_and_unanchored_time(metrics_token, two_environments, settings):
    developer, _, prod = two_environments
    file_release(actor=developer, application=app("a1"), environment=prod)
    # before any checkpoint, the events are unanchored (and no checkpoint age is claimed)
    figures = samples(scrape())
    assert figures[("slipway_audit_unanchored_seconds", ())] >= 0
    assert ("slipway_audit_checkpoint_age_seconds", ()) not in figures
    # a checkpoint covers them all
    audit_checkpoint_write()
    figures = samples(scrape())
    assert figures[("slipway_audit_unanchored_seconds", ())] == 0
    assert 0 <= figures[("slipway_audit_checkpoint_age_seconds", ())] < 60
    # an event after it is unanchored again, for as long as it has waited (seen half an hour later)
    file_release(actor=developer, application=app("a2"), environment=prod)
    later = timezone.now() + timedelta(minutes=30)
    unanchored = audit_families(later, settings.SLIPWAY_AUDIT_CHECKPOINT_DIR)[0].samples[0].value
    assert 1790 < unanchored < 1810


@pytest.mark.django_db
def test_metering_gaps_of_the_last_day_by_cluster(metrics_token):
    cluster = ClusterFactory(name="east")
    now = timezone.now()
    for hours in (1, 2, 30):  # the third is older than the window
        MeteringGap.objects.create(cluster=cluster, sampled_at=now - timedelta(hours=hours), interval_seconds=300,
                                   reason="cluster east unreachable")
    assert samples(scrape())[("slipway_metering_gaps", (("cluster", "east"),))] == 2


@pytest.mark.django_db
def test_the_state_figures_cost_the_same_few_queries_whatever_the_data(metrics_token, two_environments,
                                                                        django_assert_num_queries):
    developer, dev, prod = two_environments
    # 5 queries: releases grouped by state and environment; the oldest unanchored audit event; metering gaps;
    # notification attempts by medium and outcome; pending deliveries by medium
    with django_assert_num_queries(5):
        scrape()
    for n in range(6):
        file_release(actor=developer, application=app(f"a{n}"), environment=prod)
        MeteringGap.objects.create(cluster=prod.cluster, sampled_at=timezone.now(), interval_seconds=300, reason="x")
        delivery = NotificationDelivery.objects.create(notification=Notification.objects.create(
            event="awaiting_approval", project=prod_project()), medium="email", target=f"u{n}")
        DeliveryAttempt.objects.create(delivery=delivery, number=1, outcome="retrying", started_at=timezone.now(),
                                       finished_at=timezone.now())
    with django_assert_num_queries(5):
        scrape()


def errors(system: str, target: str) -> float:
    labels = {"system": system, "target": target, "kind": "transient"}
    return REGISTRY.get_sample_value("slipway_external_call_errors_total", labels) or 0.0


# -- events -----------------------------------------------------------------------------------
def test_a_registry_that_cannot_be_reached_is_counted_by_target(settings):
    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    settings.SLIPWAY_REGISTRIES = [host]
    before = errors("registry", host)
    with pytest.raises(TransientError):
        registry.resolve_digest(f"{host}/shop/api:1.0")
    assert errors("registry", host) == before + 1


def test_only_external_errors_are_counted_and_ignored_kinds_are_not():
    class Missing(TransientError):
        pass

    before = errors("dns", "z.example.")
    for error in (Missing("gone"), ValueError("a bug, not a call error")):
        with pytest.raises(type(error)), call_errors_counted("dns", "z.example.", ignore=(Missing,)):
            raise error
    assert errors("dns", "z.example.") == before


@pytest.mark.django_db
def test_scrapes_and_probes_log_no_token_and_no_broker_password(metrics_token, caplog, monkeypatch):
    caplog.set_level("DEBUG")
    for authorization in (f"Bearer {TOKEN}", f"Bearer {TOKEN}-wrong"):
        Client().get("/metrics", HTTP_AUTHORIZATION=authorization)
    monkeypatch.setattr(celery_app.conf, "broker_write_url", f"redis://:hunter2secret@127.0.0.1:{free_port()}/0")
    Client().get("/readyz")
    assert "readiness: broker unavailable" in caplog.text
    assert TOKEN not in caplog.text and "hunter2secret" not in caplog.text


@pytest.mark.django_db
def test_another_part_adds_its_figures_with_a_state_source(metrics_token, monkeypatch):
    from prometheus_client.core import CounterMetricFamily

    from workflows import metrics as state

    def deliveries():  # figures another part reads from its own table at scrape time
        family = CounterMetricFamily("slipway_example_deliveries", "Deliveries.", labels=["channel", "outcome"])
        family.add_metric(["smtp", "delivered"], 3)
        return [family]

    monkeypatch.setattr(state, "STATE_SOURCES", [])
    state.state_source(deliveries)
    state.state_source(deliveries)
    assert state.STATE_SOURCES == [deliveries]  # registered once
    figures = samples(scrape())
    assert figures[("slipway_example_deliveries_total", (("channel", "smtp"), ("outcome", "delivered")))] == 3


def prod_project():
    from deployments.models import Project

    return Project.objects.get(slug="shop")


@pytest.mark.django_db
def test_notification_attempts_by_medium_and_outcome_and_pending_deliveries(metrics_token, project):
    # given an email delivered at the second attempt, and a chat delivery still pending for an hour
    notification = Notification.objects.create(event="awaiting_approval", project=project)
    now = timezone.now()
    mail = NotificationDelivery.objects.create(notification=notification, medium="email", target="dev",
                                               status="delivered", attempts=2)
    for number, outcome in ((1, "retrying"), (2, "delivered")):
        DeliveryAttempt.objects.create(delivery=mail, number=number, outcome=outcome, started_at=now, finished_at=now)
    chat = NotificationDelivery.objects.create(notification=notification, medium="slack", target="channel ops")
    NotificationDelivery.objects.filter(id=chat.id).update(created_at=now - timedelta(hours=1))
    # when Prometheus scrapes
    figures = samples(scrape())
    # then
    attempts = "slipway_notification_delivery_attempts_total"
    assert figures[(attempts, (("medium", "email"), ("outcome", "retrying")))] == 1
    assert figures[(attempts, (("medium", "email"), ("outcome", "delivered")))] == 1
    assert figures[("slipway_notification_deliveries_pending", (("medium", "slack"),))] == 1
    assert ("slipway_notification_deliveries_pending", (("medium", "email"),)) not in figures
    assert 3590 < figures[("slipway_notification_oldest_pending_seconds", (("medium", "slack"),))] < 3700
