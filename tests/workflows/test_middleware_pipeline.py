"""End to end: a Redis instance through the API, the approval policy, a real worker, the registry and the sandbox."""
import base64
import json

import pytest

from deployments import services as deployments
from deployments.models import Environment, MiddlewareCredentials, Revision
from tests.deployments.factories import MembershipFactory, UserFactory, base_image
from tests.workflows.factories import PINNED
from tests.workflows.test_pipeline import wait_final
from workflows.models import AuditEvent, Release, StepRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.usefixtures("quick_pipeline")]
URL = "/api/v1/projects/shop/middleware/"


@pytest.fixture
def world(project, sandbox_cluster, worker, registry):
    developer = MembershipFactory(project=project, role="developer", user=UserFactory(username="dev")).user
    approver = MembershipFactory(project=project, role="approver", user=UserFactory(username="boss")).user
    prod = Environment.objects.create(name="prod", cluster=sandbox_cluster, required_approvals=1,
                                      rollout_deadline_seconds=5)
    dev = Environment.objects.create(name="dev", cluster=sandbox_cluster, required_approvals=0,
                                     rollout_deadline_seconds=5)
    redis = base_image("redis")
    redis.image = f"{registry.host}/slipway/base/redis:7.4"
    redis.save()
    digest = registry.push_image("slipway/base/redis", "7.4")
    return developer, approver, dev, prod, digest


def secret_values(env: Environment, name: str = "cache-connection") -> dict[str, str]:
    secret = deployments.cluster_client(env.cluster).read("Secret", name, f"shop-{env.name}")
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def test_a_redis_instance_waits_for_approval_deploys_and_its_password_shows_nowhere(api, world, registry):
    developer, approver, _, prod, digest = world
    responses = []
    # given a developer asks for a Redis in prod, which needs one approval
    created = api.as_user(developer).post(URL, {"template": "redis", "name": "cache", "environment": "prod",
                                                "variables": {"maxmemory_mb": 64}}, format="json")
    assert created.status_code == 201, created.json()
    release_id = created.json()["release"]["id"]
    assert created.json()["release"]["state"] == "requested"
    responses.append(created)
    # when the approver signs it off
    responses.append(api.as_user(approver).post(f"/api/v1/releases/{release_id}/approve/", {}, format="json"))
    # then the worker pins the image, deploys and verifies it
    release = wait_final(Release.objects.get(id=release_id))
    assert release.state == "succeeded", release.failure_reason
    assert release.image_digest == digest
    # and the cluster holds the connection Secret with the generated password
    password = MiddlewareCredentials.objects.get(instance__application__name="cache", environment=prod).values[
        "password"]
    assert secret_values(prod)["REDIS_URL"] == f"redis://:{password}@cache:6379/0"
    deployment = deployments.cluster_client(prod.cluster).read("Deployment", "cache", "shop-prod")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"{registry.host}/slipway/base/redis:7.4@{digest}"
    # but the password is in no API answer, audit event, revision or step log
    client = api.as_user(developer)
    for path in (f"{URL}", f"{URL}cache/", f"/api/v1/releases/{release_id}/", f"/api/v1/releases/{release_id}/steps/",
                 f"/api/v1/releases/{release_id}/audit/", "/api/v1/audit/?project=shop", "/api/v1/applications/"):
        responses.append(client.get(path))
        assert responses[-1].status_code == 200, path
    assert client.get(f"{URL}cache/").json()["environments"] == ["prod"]
    encoded = base64.b64encode(password.encode()).decode()
    seen = {
        "api": "".join(r.content.decode() for r in responses),
        "audit": json.dumps(list(AuditEvent.objects.values()), default=str),
        "revisions": json.dumps(list(Revision.objects.values_list("manifests", flat=True))),
        "steps": json.dumps(list(StepRun.objects.values_list("log", "error"))),
    }
    for where, text in seen.items():
        assert password not in text and encoded not in text, f"the password leaked into {where}"
    assert "****@cache:6379" in seen["api"]


def test_an_application_using_the_instance_gets_its_settings_and_may_reach_it(api, world):
    developer, _, dev, _, _ = world
    client = api.as_user(developer)
    created = client.post(URL, {"template": "redis", "name": "cache", "environment": "dev"}, format="json")
    assert wait_final(Release.objects.get(id=created.json()["release"]["id"])).state == "succeeded"
    # given an application that uses the instance
    app = client.post("/api/v1/applications/", {"project": "shop", "name": "api", "image": "registry.example.com/shop/api",
                                                "uses_middleware": ["cache"]}, format="json")
    assert app.status_code == 201, app.json()
    # when it is released
    filed = client.post("/api/v1/releases/", {"application": app.json()["id"], "environment": "dev", "version": "1.0",
                                              "image": PINNED.format(version="1.0")}, format="json")
    release = wait_final(Release.objects.get(id=filed.json()["id"]))
    # then its pods get the connection settings as env and its policy lets them reach the instance
    assert release.state == "succeeded", release.failure_reason
    kube = deployments.cluster_client(dev.cluster)
    container = kube.read("Deployment", "api", "shop-dev")["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "cache-connection"}}]
    policy = kube.read("NetworkPolicy", "api-to-cache", "shop-dev")
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "cache"
    assert policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0]["values"] == ["api"]
    assert "REDIS_URL" in secret_values(dev)

