"""The approved snapshot is what runs: a real Celery worker, Redis, PostgreSQL and the sandbox cluster over HTTP.

The attacks: a developer files a small release, gets it approved, then edits the application (replicas, CPU,
memory, port, probe, exposure, smoke-check URL, callers, middleware) before the worker deploys; retries a failed
release after an edit; rolls back after an edit. Each time the cluster gets what was approved.
"""
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments import services as deployments
from deployments.kube import ObjectNotFound
from deployments.models import Environment
from dns.models import EnvironmentZone, Record, Zone
from tests.deployments.factories import ApplicationFactory, MembershipFactory, UserFactory, middleware_instance
from tests.workflows.factories import file_release, wait_final
from workflows import services
from workflows.models import Release
from workflows.services import pipeline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.usefixtures("quick_pipeline")]

EDIT = {
    "replicas": 20, "cpu_request": "4", "cpu_limit": "4", "memory_request": "8Gi", "memory_limit": "8Gi",
    "port": 9999, "health_path": "/admin", "exposed": True, "smoke_check_url": "http://127.0.0.1:9/nowhere",
    "allowed_callers": ["web"], "uses_middleware": ["cache"],
}


@pytest.fixture
def world(project, sandbox_cluster, worker):
    developer = MembershipFactory(project=project, role="developer", user=UserFactory(username="dev")).user
    approver = MembershipFactory(project=project, role="approver", user=UserFactory(username="lead")).user
    prod = Environment.objects.create(name="prod", cluster=sandbox_cluster, required_approvals=1,
                                      rollout_deadline_seconds=5)
    app = ApplicationFactory(project=project, name="api", replicas=1, cpu_request="100m", cpu_limit="100m")
    ApplicationFactory(project=project, name="web")
    middleware_instance(project)  # "cache", never deployed to prod
    return developer, approver, prod, app


def kube(env):
    return deployments.cluster_client(env.cluster)


def container(env, name="api") -> dict:
    return kube(env).read("Deployment", name, f"shop-{env.name}")["spec"]["template"]["spec"]["containers"][0]


def assert_runs_the_small_release(env) -> None:
    deployment = kube(env).read("Deployment", "api", f"shop-{env.name}")
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]["containers"][0]
    assert pod["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "100m", "memory": "256Mi"}}
    assert pod["ports"][0]["containerPort"] == 8080 and pod["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert "envFrom" not in pod
    with pytest.raises(ObjectNotFound):
        kube(env).read("Ingress", "api", f"shop-{env.name}")
    with pytest.raises(ObjectNotFound):
        kube(env).read("NetworkPolicy", "api-to-cache", f"shop-{env.name}")
    assert kube(env).read("NetworkPolicy", "api-allow-ingress", f"shop-{env.name}")["spec"]["ingress"] == []


def test_an_approved_release_deploys_what_was_approved_not_the_application_edited_since(world, api):
    developer, approver, prod, app = world
    # given a release of 1 replica × 0.1 CPU, approved, waiting for its schedule
    release = file_release(actor=developer, application=app, environment=prod,
                           scheduled_at=timezone.now() + timedelta(hours=1))
    services.approval_grant(release_id=release.id, actor=approver)
    # when the developer edits everything that reaches the cluster
    response = api.as_user(developer).patch(f"/api/v1/applications/{app.id}/", EDIT, format="json")
    assert response.status_code == 200, response.json()
    # and the release starts (its schedule is brought forward)
    Release.objects.filter(id=release.id).update(scheduled_at=None)
    pipeline.lane_advance(application_id=app.id, environment_id=prod.id)
    release = wait_final(release)
    # then the cluster runs what the approver approved, and the smoke check was the filed one (none)
    assert release.state == "succeeded", release.failure_reason
    assert_runs_the_small_release(prod)
    assert release.revision.spec == release.snapshot["spec"] and release.revision.replicas == 1
    detail = api.as_user(developer).get(f"/api/v1/releases/{release.id}/").json()
    assert detail["application_changed"] is True and "replicas" in detail["application_changes"]


def test_a_retry_after_a_failure_runs_the_filed_snapshot_not_the_edited_application(world, api, project):
    developer, approver, prod, app = world
    # given the build fails: the application's DNS name is held by another application
    zone = Zone.objects.create(name="apps.example.", provider="local", default_ttl=60)
    EnvironmentZone.objects.create(environment=prod, zone=zone)
    other = ApplicationFactory(project=project, name="other")
    blocker = Record.objects.create(zone=zone, application=other, environment=prod, name="api.shop.apps.example.",
                                    type="A", content="10.0.0.1", ttl=60, status="synced")
    release = file_release(actor=developer, application=app, environment=prod)
    services.approval_grant(release_id=release.id, actor=approver)
    release = wait_final(release)
    assert (release.state, release.failed_step) == ("failed", "build"), release.failure_reason
    # when the developer edits the application, the name is freed and the release is retried
    response = api.as_user(developer).patch(f"/api/v1/applications/{app.id}/", {
        key: EDIT[key] for key in ("replicas", "cpu_request", "cpu_limit", "port", "uses_middleware")
    }, format="json")
    assert response.status_code == 200, response.json()
    blocker.delete()
    assert api.as_user(developer).post(f"/api/v1/releases/{release.id}/retry/").status_code == 200
    release = wait_final(release)
    # then the retry deployed the snapshot it was approved with
    assert release.state == "succeeded", release.failure_reason
    assert_runs_the_small_release(prod)


def test_a_rollback_restores_the_revision_and_verifies_it_by_its_own_snapshot(world, api):
    developer, approver, prod, app = world
    prod.required_approvals = 0
    prod.save()
    first = wait_final(file_release(actor=developer, application=app, environment=prod, version="1.0"))
    app.replicas = 3
    app.save()
    second = wait_final(file_release(actor=developer, application=app, environment=prod, version="2.0"))
    assert (first.state, second.state) == ("succeeded", "succeeded")
    assert kube(prod).read("Deployment", "api", "shop-prod")["spec"]["replicas"] == 3
    # when the developer edits the application (a smoke check that fails, 20 replicas) and rolls back
    response = api.as_user(developer).patch(f"/api/v1/applications/{app.id}/", {
        key: EDIT[key] for key in ("replicas", "cpu_request", "cpu_limit", "smoke_check_url")}, format="json")
    assert response.status_code == 200, response.json()
    rollback = services.release_rollback(release_id=second.id, actor=developer)
    # then the rollback's snapshot is the restored revision, and that is what runs and is verified
    assert rollback.snapshot["restores"]["revision"] == first.revision_id
    assert rollback.snapshot["spec"] == first.revision.spec and rollback.spec.replicas == 1
    assert rollback.cost_impact["proposed"]["replicas"] == 1
    rollback = wait_final(rollback)
    assert rollback.state == "succeeded", rollback.failure_reason
    assert_runs_the_small_release(prod)
    assert rollback.revision.spec == first.revision.spec


def file_scheduled(developer, app, env, image):
    """A release filed with a tag, waiting for its schedule (so the test acts between approval and start)."""
    return file_release(actor=developer, application=app, environment=env, image=image,
                        scheduled_at=timezone.now() + timedelta(hours=1))


def start(release):
    Release.objects.filter(id=release.id).update(scheduled_at=None)
    pipeline.lane_advance(application_id=release.application_id, environment_id=release.environment_id)
    return wait_final(release)


def test_a_tag_pushed_again_after_approval_does_not_change_what_deploys(world, registry):
    developer, approver, prod, app = world
    approved = registry.push_image("shop/api", "5.0")
    # given a release of a tag, approved for the digest it had at filing
    release = file_scheduled(developer, app, prod, f"{registry.host}/shop/api:5.0")
    services.approval_grant(release_id=release.id, actor=approver)
    # when someone pushes other bytes under the same tag before the release starts
    pushed = registry.push_image("shop/api", "5.0", layers=2)
    release = start(release)
    # then the approved digest is what runs
    assert release.state == "succeeded", release.failure_reason
    assert (release.image_digest, pushed != approved) == (approved, True)
    assert container(prod)["image"] == f"{registry.host}/shop/api:5.0@{approved}"


def test_a_digest_deleted_from_the_registry_since_filing_fails_the_build_before_the_cluster(world, registry):
    developer, approver, prod, app = world
    digest = registry.push_image("shop/api", "6.0")
    release = file_scheduled(developer, app, prod, f"{registry.host}/shop/api:6.0")
    services.approval_grant(release_id=release.id, actor=approver)
    registry._call("DELETE", f"{registry.url}/v2/shop/api/manifests/{digest}", data=b"")

    release = start(release)

    assert (release.state, release.failed_step) == ("failed", "build")
    assert "not found" in release.failure_reason, release.failure_reason
    with pytest.raises(ObjectNotFound):
        kube(prod).read("Deployment", "api", "shop-prod")
