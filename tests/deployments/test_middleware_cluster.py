"""Middleware instances in the sandbox cluster: the Secret is applied with its values, revisions keep it redacted."""
import base64
import json

import pytest

from deployments import services
from deployments.manifests import REDACTED, ReleaseConfig
from deployments.models import MiddlewareCredentials, Revision
from paas_site.errors import PermanentError
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, deploy_spec, middleware_instance
from workflows.models import AuditEvent

pytestmark = pytest.mark.django_db
IMAGE = "registry.example.com/base/redis:7.4@sha256:" + "a" * 64


@pytest.fixture
def env(sandbox_cluster):
    return EnvironmentFactory(name="dev", cluster=sandbox_cluster, rollout_deadline_seconds=5)


@pytest.fixture
def kube(sandbox_cluster):
    return services.cluster_client(sandbox_cluster)


def apply(instance_or_app, env, release="1", maxmemory_mb=256):
    application = getattr(instance_or_app, "application", instance_or_app)
    config = ReleaseConfig(files={"redis.conf": f"maxmemory {maxmemory_mb}mb\n"})
    return services.deployment_apply(
        application_id=application.id, environment_id=env.id, image=IMAGE, config=config, release=release,
        spec=deploy_spec(application, env),
    )


def secret_values(kube, name="cache-connection", namespace="shop-dev") -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in kube.read("Secret", name, namespace)["data"].items()}


def test_the_secret_reaches_the_cluster_with_the_generated_password_and_the_revision_keeps_it_redacted(
    project, env, kube
):
    instance = middleware_instance(project)

    revision = apply(instance, env)

    password = MiddlewareCredentials.objects.get(instance=instance, environment=env).values["password"]
    assert secret_values(kube) == {"REDIS_HOST": "cache", "REDIS_PORT": "6379", "REDIS_PASSWORD": password,
                                   "REDIS_URL": f"redis://:{password}@cache:6379/0"}
    stored = next(obj for obj in revision.manifests if obj["kind"] == "Secret")
    assert set(stored["data"].values()) == {REDACTED}
    for text in (password, base64.b64encode(password.encode()).decode()):
        assert text not in json.dumps(revision.manifests)
    (generated,) = AuditEvent.objects.filter(action="object.created", target_type="deployments.middlewarecredentials")
    assert generated.actor == "system:deploy" and generated.project_id == project.id
    assert password not in json.dumps([generated.before, generated.after, generated.message])
    assert generated.after["secrets"].startswith("(set ")


def test_each_environment_gets_its_own_password_and_a_redeploy_keeps_it(project, env, kube, sandbox_cluster):
    instance = middleware_instance(project)
    prod = EnvironmentFactory(name="prod", cluster=sandbox_cluster)
    apply(instance, env, release="1")
    first = secret_values(kube)["REDIS_PASSWORD"]

    apply(instance, env, release="2", maxmemory_mb=512)
    apply(instance, prod, release="3")

    assert secret_values(kube)["REDIS_PASSWORD"] == first
    assert secret_values(kube, namespace="shop-prod")["REDIS_PASSWORD"] != first
    assert MiddlewareCredentials.objects.filter(instance=instance).count() == 2


def test_a_rollback_re_applies_the_secret_with_its_values(project, env, kube):
    instance = middleware_instance(project)
    good = apply(instance, env, release="1", maxmemory_mb=256)
    apply(instance, env, release="2", maxmemory_mb=512)
    kube.delete("Secret", "cache-connection", "shop-dev")  # lost meanwhile: the rollback must restore it

    services.deployment_rollback(application_id=instance.application_id, environment_id=env.id, to_revision_id=good.id)

    assert kube.read("ConfigMap", "cache-config", "shop-dev")["data"]["redis.conf"] == "maxmemory 256mb\n"
    assert secret_values(kube)["REDIS_URL"].startswith("redis://:")
    assert REDACTED not in json.dumps(kube.read("Secret", "cache-connection", "shop-dev"))


def test_decommission_removes_the_secret_too(project, env, kube):
    instance = middleware_instance(project)
    apply(instance, env)

    services.application_decommission(application_id=instance.application_id, environment_id=env.id)

    with pytest.raises(PermanentError):
        kube.read("Secret", "cache-connection", "shop-dev")


def test_an_application_using_the_instance_gets_env_from_its_secret(project, env, kube):
    instance = middleware_instance(project)
    api = ApplicationFactory(project=project, name="api")
    api.uses_middleware.add(instance)
    apply(instance, env)

    revision = apply(api, env, release="2")

    container = kube.read("Deployment", "api", "shop-dev")["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "cache-connection"}}]
    assert kube.read("NetworkPolicy", "api-to-cache", "shop-dev")["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "cache", "app.kubernetes.io/instance": "cache-dev"}
    assert not any(obj["kind"] == "Secret" for obj in revision.manifests)


def test_an_application_using_an_instance_not_deployed_there_fails_before_touching_the_cluster(project, env, kube):
    api = ApplicationFactory(project=project, name="api")
    api.uses_middleware.add(middleware_instance(project))

    with pytest.raises(PermanentError, match="uses the middleware instance cache, which is not deployed in dev"):
        apply(api, env)

    with pytest.raises(PermanentError):
        kube.read("Deployment", "api", "shop-dev")


def test_a_secret_that_is_not_an_instances_connection_secret_is_never_applied(project, env, kube):
    api = ApplicationFactory(project=project, name="api")
    apply(api, env)
    forged = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-connection", "namespace": "shop-dev"},
              "data": {"X": REDACTED}}
    earlier = Revision.objects.create(application=api, environment=env, number=99, manifests=[forged],
                                      manifests_digest="x")

    with pytest.raises(PermanentError, match="api-connection"):
        services.deployment_rollback(application_id=api.id, environment_id=env.id, to_revision_id=earlier.id)

    with pytest.raises(PermanentError):
        kube.read("Secret", "api-connection", "shop-dev")


def test_the_admin_shows_the_instance_but_never_its_credentials(client, staff, project, env):
    instance = middleware_instance(project)
    apply(instance, env)
    password = MiddlewareCredentials.objects.get().values["password"]
    client.force_login(staff)

    page = client.get(f"/admin/deployments/middlewareinstance/{instance.id}/change/")
    event = AuditEvent.objects.get(target_type="deployments.middlewarecredentials")
    audit_page = client.get(f"/admin/workflows/auditevent/{event.id}/change/")

    assert page.status_code == 200 and b"dev" in page.content
    assert audit_page.status_code == 200
    for content in (page.content, audit_page.content):
        assert password.encode() not in content
    assert client.get("/admin/deployments/middlewarecredentials/").status_code == 404
