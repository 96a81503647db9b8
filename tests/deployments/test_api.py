import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Application, Cluster
from tests.deployments.factories import (
    ApplicationFactory,
    ClusterFactory,
    EnvironmentFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from workflows.models import ApiToken

pytestmark = pytest.mark.django_db

VALID_APP = {
    "project": "shop", "name": "api", "image": "registry.example.com/shop/api", "port": 8080,
    "cpu_request": "250m", "cpu_limit": "1", "memory_request": "256Mi", "memory_limit": "512Mi", "replicas": 2,
}


def test_a_new_user_gets_a_token_and_creates_an_application(api, developer):
    # given a developer with a password
    response = api.post("/api/v1/auth/token/", {"username": "dev", "password": "correct horse battery staple"})
    assert response.status_code == 200
    token = response.json()["token"]

    # when they create an application with the token
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api.post("/api/v1/applications/", VALID_APP, format="json")

    # then it exists, as sent
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["project"] == "shop" and body["name"] == "api" and body["cpu_limit"] == "1"
    assert Application.objects.filter(project__slug="shop", name="api").exists()


def test_wrong_password_gets_a_json_error(api, developer):
    response = api.post("/api/v1/auth/token/", {"username": "dev", "password": "nope"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "Unable to log in" in response.json()["message"]


def test_requests_without_credentials_are_401_json(api, db):
    response = api.get("/api/v1/projects/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"name": "Shop-API"}, "name", "lowercase"),
        ({"name": "a" * 41}, "name", "40 characters"),
        ({"name": "2fast"}, "name", "must start with a letter"),
        ({"name": "-api"}, "name", "start and end"),
        ({"cpu_request": "fast"}, "cpu_request", "not a Kubernetes CPU quantity"),
        ({"memory_limit": "128Mi"}, "memory_limit", "at least memory_request"),
        ({"autoscaling_min": 5, "autoscaling_max": 2, "autoscaling_target_cpu": 60}, "autoscaling_min", "exceed"),
        ({"base_image": "websphere", "image": ""}, "base_image", "does not exist"),
        ({"port": 70000}, "port", "65535"),
        ({"image": "Not An Image"}, "image", "not a valid image reference"),
        ({"replicas": -1}, "replicas", "greater than or equal to 0"),
        ({"allowed_callers": ["ghost"]}, "allowed_callers", "does not exist"),
    ],
)
def test_bad_application_input_is_a_400_naming_the_field_and_nothing_is_saved(api, developer, change, field, reason):
    response = api.as_user(developer).post("/api/v1/applications/", {**VALID_APP, **change}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"message", "code", "extra"}
    assert body["code"] == "invalid"
    assert field in body["extra"]["fields"]
    assert body["message"].startswith(f"{field}:") or f"; {field}:" in body["message"]
    assert reason in body["message"]
    assert not Application.objects.exists()


def test_malformed_json_is_a_400_json_error(api, developer):
    response = api.as_user(developer).generic(
        "POST", "/api/v1/applications/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_allowed_callers_resolve_within_the_project(api, developer, project):
    web = ApplicationFactory(project=project, name="web")
    ApplicationFactory(project=ProjectFactory(), name="intruder")

    ok = api.as_user(developer).post("/api/v1/applications/", {**VALID_APP, "allowed_callers": ["web"]}, format="json")
    other = api.post("/api/v1/applications/", {**VALID_APP, "name": "b", "allowed_callers": ["intruder"]}, format="json")

    assert ok.status_code == 201
    assert list(Application.objects.get(name="api").allowed_callers.all()) == [web]
    assert other.status_code == 400 and "allowed_callers" in other.json()["extra"]["fields"]


def test_an_application_cannot_move_between_projects(api, developer, project):
    app = ApplicationFactory(project=project)
    MembershipFactory(project=ProjectFactory(slug="other"), user=developer)

    response = api.as_user(developer).patch(f"/api/v1/applications/{app.id}/", {"project": "other"}, format="json")

    assert response.status_code == 400 and "project" in response.json()["extra"]["fields"]


def test_non_members_get_404_for_another_projects_objects(api, outsider, project):
    app = ApplicationFactory(project=project)
    client = api.as_user(outsider)

    assert client.get(f"/api/v1/applications/{app.id}/").status_code == 404
    assert client.get("/api/v1/projects/shop/").status_code == 404
    assert client.patch(f"/api/v1/applications/{app.id}/", {"replicas": 3}, format="json").status_code == 404
    assert client.get("/api/v1/applications/").json()["results"] == []
    assert client.get("/api/v1/projects/").json()["count"] == 0


def test_creating_in_a_project_you_do_not_belong_to_is_refused(api, outsider, project):
    response = api.as_user(outsider).post("/api/v1/applications/", VALID_APP, format="json")
    assert response.status_code == 400
    assert "project" in response.json()["extra"]["fields"]
    assert not Application.objects.exists()


def test_finance_reads_everything_but_writes_nothing(api, finance_user, project):
    app = ApplicationFactory(project=project)
    client = api.as_user(finance_user)

    assert client.get(f"/api/v1/applications/{app.id}/").status_code == 200
    assert client.get("/api/v1/projects/").json()["count"] == 1
    for response in (
        client.patch(f"/api/v1/applications/{app.id}/", {"replicas": 3}, format="json"),
        client.delete(f"/api/v1/applications/{app.id}/"),
        client.post("/api/v1/applications/", VALID_APP, format="json"),
        client.post("/api/v1/clusters/", {"name": "c", "api_server": "https://x", "token": "t"}, format="json"),
        client.patch("/api/v1/projects/shop/", {"name": "Mine"}, format="json"),
    ):
        assert response.status_code == 403, response.json()
        assert response.json()["code"] == "permission_denied"
    assert Application.objects.get(id=app.id).replicas == 1


def test_approvers_read_but_do_not_edit_applications(api, project):
    approver = MembershipFactory(project=project, role="approver").user
    app = ApplicationFactory(project=project)

    response = api.as_user(approver).patch(f"/api/v1/applications/{app.id}/", {"replicas": 3}, format="json")

    assert response.status_code == 403
    assert "developer or maintainer" in response.json()["message"]


def test_only_maintainers_manage_memberships(api, developer, maintainer, project):
    newcomer = UserFactory(username="newcomer")
    payload = {"project": "shop", "user": "newcomer", "role": "developer"}

    assert api.as_user(developer).post("/api/v1/memberships/", payload, format="json").status_code == 403
    response = api.as_user(maintainer).post("/api/v1/memberships/", payload, format="json")
    assert response.status_code == 201
    assert newcomer.memberships.get().role == "developer"


def test_cluster_credentials_are_never_returned(api, staff):
    response = api.as_user(staff).post(
        "/api/v1/clusters/",
        {"name": "east", "api_server": "https://east.example.com:6443", "token": "tok-123-secret"},
        format="json",
    )
    assert response.status_code == 201
    for body in (response.json(), api.get("/api/v1/clusters/east/").json(), api.get("/api/v1/clusters/").json()):
        assert "tok-123-secret" not in str(body)
        assert "token" not in str(body.get("results", [body])[0].keys())
    assert response.json()["has_credentials"] is True
    assert Cluster.objects.get(name="east").token == "tok-123-secret"


def test_cluster_with_a_broken_kubeconfig_is_a_400(api, staff):
    response = api.as_user(staff).post(
        "/api/v1/clusters/", {"name": "west", "auth_method": "kubeconfig", "kubeconfig": "{{{"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("kubeconfig: is not valid YAML")
    assert not Cluster.objects.filter(name="west").exists()


def test_developers_cannot_administer_clusters_or_environments(api, developer):
    cluster = ClusterFactory()
    client = api.as_user(developer)
    assert client.get("/api/v1/clusters/").status_code == 200
    assert client.patch(f"/api/v1/clusters/{cluster.name}/", {"ingress_address": "1.2.3.4"}).status_code == 403
    assert client.post("/api/v1/environments/", {"name": "x", "cluster": cluster.name}).status_code == 403


def test_staff_create_environments_with_validation(api, staff):
    cluster = ClusterFactory()
    client = api.as_user(staff)
    bad = client.post("/api/v1/environments/", {"name": "prod", "cluster": cluster.name,
                                                "namespace_pattern": "{team}"}, format="json")
    good = client.post("/api/v1/environments/", {"name": "prod", "cluster": cluster.name,
                                                 "required_approvals": 2}, format="json")
    assert bad.status_code == 400 and "namespace_pattern" in bad.json()["extra"]["fields"]
    assert good.status_code == 201 and good.json()["allow_self_approval"] is False


def test_deleting_a_cluster_in_use_is_a_409(api, staff):
    env = EnvironmentFactory()
    response = api.as_user(staff).delete(f"/api/v1/clusters/{env.cluster.name}/")
    assert response.status_code == 409
    assert env.name in response.json()["message"]


@pytest.mark.parametrize(
    "url", ["/api/v1/applications/", "/api/v1/projects/", "/api/v1/memberships/", "/api/v1/environments/",
            "/api/v1/clusters/", "/api/v1/base-images/"],
)
def test_list_endpoints_use_a_constant_number_of_queries(api, developer, project, url):
    def queries() -> int:
        api.force_authenticate(type(developer).objects.get(pk=developer.pk))  # a fresh user, as per request
        with CaptureQueriesContext(connection) as ctx:
            assert api.get(url).status_code == 200
        return len(ctx)

    grow(project, 1)
    few = queries()
    grow(project, 6)
    assert queries() == few


def grow(project, n: int) -> None:
    for _ in range(n):
        app = ApplicationFactory(project=project)
        app.allowed_callers.add(ApplicationFactory(project=project))
        MembershipFactory(project=project)
        EnvironmentFactory()


def test_token_auth_header_works(api, developer):
    _, token = ApiToken.objects.create(user=developer, name="test")
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/projects/").json()["results"][0]["slug"] == "shop"
