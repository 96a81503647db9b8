"""Metering against the sandbox cluster over HTTP."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import services
from billing.models import MeteringGap, UsageSample
from deployments import services as deployments
from deployments.manifests import ReleaseConfig
from deployments.models import Revision
from tests.billing.factories import PriceBookFactory
from tests.deployments.factories import ApplicationFactory, ClusterFactory, EnvironmentFactory, deploy_spec

pytestmark = pytest.mark.django_db
IMAGE = "registry.example.com/shop/api:1.0@sha256:" + "a" * 64
T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def env(sandbox_cluster):
    return EnvironmentFactory(name="dev", cluster=sandbox_cluster)


@pytest.fixture
def app(project):
    # the limit covers the request: a real API server refuses a request above its limit
    return ApplicationFactory(project=project, name="api", replicas=2, cpu_request="250m", memory_request="384Mi",
                              memory_limit="512Mi", exposed=True)


def deploy(app, env):
    return deployments.deployment_apply(
        application_id=app.id, environment_id=env.id, image=IMAGE, config=ReleaseConfig(), release="1",
        spec=deploy_spec(app, env, hostname="api.shop.dev.example.test"),
    )


def test_samples_follow_the_replicas_of_the_running_deployment(app, env, sandbox_cluster, settings):
    # given
    settings.SLIPWAY_METERING_INTERVAL_SECONDS = 60
    deploy(app, env)

    # when
    first = services.usage_meter(now=T0)
    deployments.deployment_scale(application_id=app.id, environment_id=env.id, replicas=5)
    second = services.usage_meter(now=T0 + timedelta(minutes=1))

    # then
    assert first["samples"] == second["samples"] == 1 and first["gaps"] == []
    before, after = UsageSample.objects.order_by("sampled_at")
    assert (before.replicas, before.cpu_cores, before.memory_gib) == (2, Decimal("0.5"), Decimal("0.75"))
    assert (after.replicas, after.cpu_cores, after.memory_gib) == (5, Decimal("1.25"), Decimal("1.875"))
    assert (before.project, before.environment, before.application, before.cluster) == (
        app.project, env, app, sandbox_cluster
    )
    assert before.exposed and before.interval_seconds == 60 and before.sampled_at == T0


def test_metering_the_same_instant_twice_records_once(app, env):
    deploy(app, env)

    services.usage_meter(now=T0)
    services.usage_meter(now=T0)

    assert UsageSample.objects.count() == 1


def test_deployments_of_unknown_applications_are_skipped(app, env, caplog):
    deploy(app, env)
    app.name = "renamed"
    app.save()

    result = services.usage_meter(now=T0)

    assert result["skipped"] == 1 and result["samples"] == 0 and not UsageSample.objects.exists()
    assert "unknown project/application shop/api" in caplog.text


def test_an_unreachable_cluster_is_a_gap_not_zero_usage(app, env):
    deploy(app, env)
    ClusterFactory(name="gone", api_server="http://127.0.0.1:9")  # nothing listens on the discard port

    result = services.usage_meter(now=T0)

    assert result["gaps"] == ["gone"] and result["samples"] == 1
    gap = MeteringGap.objects.get()
    assert gap.cluster.name == "gone" and gap.sampled_at == T0 and "unreachable" in gap.reason
    assert gap.interval_seconds == 300


# -- the cost impact of a release against what runs now ------------------------------------------------------
@pytest.fixture
def prices(env):
    return PriceBookFactory(environment=env, valid_from=T0, cpu_core_hour=Decimal("0.04"),
                            memory_gib_hour=Decimal("0.005"))


def meter_now():
    # a second later than anything recorded so far: metering truncates its instant to the second
    return services.usage_meter(now=timezone.now() + timedelta(seconds=1))


def test_a_release_of_what_runs_unchanged_costs_what_metering_saw(app, env, prices):
    # given what runs was metered
    deploy(app, env)
    meter_now()

    # when the same application is released again
    impact = services.release_cost_impact(application=app, environment=env, spec=deploy_spec(app, env))

    # then: 730 h × (2 × 0.25 cores × 0.04 + 2 × 0.375 GiB × 0.005) = 730 × 0.02375 = 17.3375
    assert impact["current"]["replicas"] == impact["proposed"]["replicas"] == 2
    assert impact["current"]["monthly_cost"] == impact["proposed"]["monthly_cost"] == Decimal("17.34")
    assert impact["delta"] == 0


def test_a_decommissioned_application_costs_nothing_now(app, env, prices):
    # given it ran and was metered, then was removed (later metering runs find no Deployment)
    deploy(app, env)
    meter_now()
    deployments.application_decommission(application_id=app.id, environment_id=env.id)
    meter_now()

    impact = services.release_cost_impact(application=app, environment=env, spec=deploy_spec(app, env))

    assert impact["current"] | {"monthly_cost": None} == {
        "replicas": 0, "cpu_cores": 0, "memory_gib": 0, "monthly_cost": None}
    assert impact["current"]["monthly_cost"] == 0 and impact["delta"] == Decimal("17.34")


def test_a_deploy_not_metered_yet_counts_as_what_it_deployed(app, env, prices):
    # given 2 replicas were deployed at T0 and metered, then 4 were deployed before the next metering run
    deploy(app, env)
    Revision.objects.update(created_at=T0)
    services.usage_meter(now=T0 + timedelta(minutes=5))
    app.replicas = 4
    app.save()
    deployments.deployment_apply(application_id=app.id, environment_id=env.id, image=IMAGE, config=ReleaseConfig(),
                                 release="2", spec=deploy_spec(app, env, hostname="api.shop.dev.example.test"))

    impact = services.release_cost_impact(application=app, environment=env, spec=deploy_spec(app, env))

    # then "now" is the 4 replicas running, not the 2 of the last sample
    assert (impact["current"]["replicas"], impact["current"]["cpu_cores"]) == (4, Decimal("1.00"))
    assert impact["current"]["monthly_cost"] == impact["proposed"]["monthly_cost"] == Decimal("34.68")
    assert impact["delta"] == 0


def test_scaling_after_the_deploy_counts_once_metered(app, env, prices):
    deploy(app, env)
    deployments.deployment_scale(application_id=app.id, environment_id=env.id, replicas=5)
    meter_now()

    impact = services.release_cost_impact(application=app, environment=env, spec=deploy_spec(app, env))

    # the release applies the application's 2 replicas again: the scale-up is given back
    assert (impact["current"]["replicas"], impact["proposed"]["replicas"]) == (5, 2)
    assert impact["delta"] == Decimal("17.34") - Decimal("43.34")
