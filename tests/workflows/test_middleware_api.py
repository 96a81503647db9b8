"""Creating and releasing middleware instances through the API: checks, roles and what is filed (no worker)."""
import pytest

from deployments.models import Application, Environment, MiddlewareInstance
from tests.deployments.factories import (
    ApplicationFactory,
    ClusterFactory,
    MembershipFactory,
    ProjectFactory,
    base_image,
    middleware_instance,
)
from workflows.models import AuditEvent, Release

pytestmark = pytest.mark.django_db
URL = "/api/v1/projects/shop/middleware/"


@pytest.fixture
def prod(db, registry):
    """The instance's image tags are pinned to digests when its releases are filed: a real registry has them."""
    redis = base_image("redis")
    redis.image = f"{registry.host}/base/redis:7.4"
    redis.save()
    for tag in ("7.4", "7.2"):
        registry.push_image("base/redis", tag)
    return Environment.objects.create(name="prod", cluster=ClusterFactory(), required_approvals=1)


def instantiate(api, user, **fields):
    body = {"template": "redis", "name": "cache", "environment": "prod", "variables": {"maxmemory_mb": 128}} | fields
    return api.as_user(user).post(URL, body, format="json")


def test_the_catalog_lists_the_templates_with_their_variables(api, developer):
    response = api.as_user(developer).get("/api/v1/middleware/templates/")

    assert response.status_code == 200
    templates = {t["name"]: t for t in response.json()}
    assert set(templates) == {"redis", "zookeeper", "nginx"}
    redis = templates["redis"]
    assert redis["variables"]["properties"]["maxmemory_mb"]["default"] == 256
    assert redis["secrets"] == ["password"] and "REDIS_URL" in redis["connection_keys"]
    assert api.get("/api/v1/middleware/templates/zookeeper/").json()["port"] == 2181
    assert api.get("/api/v1/middleware/templates/mysql/").status_code == 404


def test_instantiating_files_a_release_that_waits_for_approval(api, developer, prod):
    response = instantiate(api, developer)

    assert response.status_code == 201, response.json()
    instance, release = response.json()["instance"], response.json()["release"]
    assert (instance["name"], instance["template"], instance["environments"]) == ("cache", "redis", [])
    assert instance["variables"]["maxmemory_mb"] == 128
    assert instance["connection"]["REDIS_URL"] == "redis://:****@cache:6379/0"
    assert (release["state"], release["application"], release["environment"]) == ("requested", "cache", "prod")
    assert release["image"].endswith("/base/redis:7.4") and release["image_digest"].startswith("sha256:")
    assert "maxmemory 128mb" in release["config"]["files"]["redis.conf"]
    assert release["requested_by"] == "dev"
    application = Application.objects.get(name="cache")
    assert (application.memory_limit, application.port, application.health_path) == ("160Mi", 6379, "")
    created = AuditEvent.objects.filter(action="object.created").values_list("target_type", flat=True)
    assert set(created) == {"deployments.application", "deployments.middlewareinstance"}
    assert AuditEvent.objects.filter(action="release.requested", release_id=release["id"]).exists()


@pytest.mark.parametrize(("fields", "field"), [
    ({"variables": {"maxmemory_mb": 1}}, "variables.maxmemory_mb"),
    ({"variables": {"version": "6"}}, "variables.version"),
    ({"variables": {"requirepass": "mine"}}, "variables.requirepass"),
    ({"variables": "big"}, "variables"),
    ({"template": "mysql"}, "template"),
    ({"name": "Cache!"}, "name"),
    ({"name": "c" * 41}, "name"),
    ({"name": "api"}, "name"),  # taken by an application
    ({"environment": "moon"}, "environment"),
])
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(api, developer, prod, project, fields, field):
    ApplicationFactory(project=project, name="api")

    response = instantiate(api, developer, **fields)

    assert response.status_code == 400, response.json()
    assert field in response.json()["extra"]["fields"], response.json()
    assert not MiddlewareInstance.objects.exists() and not Release.objects.exists()
    assert Application.objects.count() == 1


def test_outsiders_get_404_for_the_project(api, outsider, prod, project):
    middleware_instance(project)

    assert instantiate(api, outsider).status_code == 404
    assert api.get(URL).status_code == 404
    assert api.get(f"{URL}cache/").status_code == 404
    assert api.post(f"{URL}cache/release/", {"environment": "prod"}, format="json").status_code == 404


def test_approvers_may_not_create_instances(api, project, prod):
    approver = MembershipFactory(project=project, role="approver").user

    response = instantiate(api, approver)

    assert response.status_code == 403
    assert not Application.objects.exists()


def test_members_list_instances_with_masked_settings_and_users(api, project, developer, prod):
    instance = middleware_instance(project, template="zookeeper", name="zk")
    ApplicationFactory(project=project, name="api").uses_middleware.add(instance)
    middleware_instance(ProjectFactory(slug="other"), name="elsewhere")

    response = api.as_user(developer).get(URL)

    assert response.status_code == 200
    (listed,) = response.json()["results"]
    assert (listed["name"], listed["consumers"]) == ("zk", ["api"])
    assert listed["connection"] == {"ZOOKEEPER_HOST": "zk", "ZOOKEEPER_PORT": "2181", "ZOOKEEPER_CONNECT": "zk:2181"}


def test_releasing_with_changed_variables_keeps_the_others_and_resizes(api, developer, project, prod, registry):
    instance = middleware_instance(project, maxmemory_mb=128, databases=4)
    Application.objects.filter(id=instance.application_id).update(image=f"{registry.host}/base/redis")

    response = api.as_user(developer).post(f"{URL}cache/release/", {"environment": "prod", "variables": {
        "maxmemory_mb": 1024}}, format="json")

    assert response.status_code == 201, response.json()
    instance.refresh_from_db()
    assert (instance.variables["maxmemory_mb"], instance.variables["databases"]) == (1024, 4)
    assert Application.objects.get(id=instance.application_id).memory_limit == "1280Mi"
    config = response.json()["release"]["config"]["files"]["redis.conf"]
    assert "maxmemory 1024mb" in config and "databases 4" in config
    changed = AuditEvent.objects.filter(action="object.changed", target_type="deployments.middlewareinstance").get()
    assert changed.before["variables"]["maxmemory_mb"] == 128


def test_releasing_with_a_bad_variable_changes_nothing(api, developer, project, prod):
    instance = middleware_instance(project)

    response = api.as_user(developer).post(f"{URL}cache/release/", {"environment": "prod", "variables": {
        "maxmemory_policy": "random"}}, format="json")

    assert response.status_code == 400
    assert list(response.json()["extra"]["fields"]) == ["variables.maxmemory_policy"]
    instance.refresh_from_db()
    assert instance.variables["maxmemory_policy"] == "allkeys-lru" and not Release.objects.exists()


def test_an_application_uses_instances_of_its_own_project_by_name(api, developer, project):
    middleware_instance(project)
    middleware_instance(ProjectFactory(slug="other"), template="nginx", name="web")
    api_app = ApplicationFactory(project=project, name="api")

    ok = api.as_user(developer).patch(f"/api/v1/applications/{api_app.id}/", {"uses_middleware": ["cache"]},
                                      format="json")
    foreign = api.patch(f"/api/v1/applications/{api_app.id}/", {"uses_middleware": ["web"]}, format="json")

    assert ok.status_code == 200 and ok.json()["uses_middleware"] == ["cache"]
    assert foreign.status_code == 400 and "uses_middleware" in foreign.json()["extra"]["fields"]
    changed = AuditEvent.objects.filter(action="object.changed", target_type="deployments.application").get()
    assert changed.after["uses_middleware"] == ["shop/cache (redis)"]


def test_an_application_cannot_use_two_instances_setting_the_same_variables_or_itself(api, developer, project):
    cache = middleware_instance(project)
    middleware_instance(project, name="sessions")
    api_app = ApplicationFactory(project=project, name="api")
    client = api.as_user(developer)

    both = client.patch(f"/api/v1/applications/{api_app.id}/", {"uses_middleware": ["cache", "sessions"]},
                        format="json")
    itself = client.patch(f"/api/v1/applications/{cache.application_id}/", {"uses_middleware": ["cache"]},
                          format="json")

    assert both.status_code == 400 and "both set REDIS_HOST" in both.json()["message"]
    assert itself.status_code == 400 and "itself" in itself.json()["message"]
