"""Inputs found by fuzzing the API: each is a 400 (or a JSON 404) naming what is wrong, never a 500."""
import json

import pytest

from deployments.models import Application, Cluster, Environment
from tests.deployments.factories import ApplicationFactory, ClusterFactory
from tests.workflows.factories import PINNED
from workflows.models import Release

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(project):
    return ApplicationFactory(project=project, name="api", image="registry.example.com/shop/api")


@pytest.fixture
def prod(db):
    return Environment.objects.create(name="prod", cluster=ClusterFactory(), required_approvals=2)


def raw_post(client, url: str, text: str):
    """Post JSON text exactly as written (``json.dumps`` would escape what we want to send)."""
    return client.post(url, data=text.encode(), content_type="application/json")


def test_a_lone_surrogate_in_a_release_config_is_refused_and_listing_still_works(api, developer, app, prod):
    client = api.as_user(developer)
    body = json.dumps({"application": app.id, "environment": "prod", "version": "1.0", "image": PINNED.format(version="1.0")})
    text = body[:-1] + ', "config": {"env": {"GREETING": "hi \\ud800"}}}'

    response = raw_post(client, "/api/v1/releases/", text)

    assert response.status_code == 400
    assert "config.env.GREETING" in response.json()["message"]
    assert "surrogate" in response.json()["message"]
    assert not Release.objects.exists()
    assert client.get("/api/v1/releases/").status_code == 200


def test_a_lone_surrogate_in_a_key_is_refused(api, staff):
    response = raw_post(api.as_user(staff), "/api/v1/clusters/", '{"name": "c1", "labels": {"\\udfff": "x"}}')

    assert response.status_code == 400
    assert "labels." in response.json()["message"]
    assert not Cluster.objects.exists()


@pytest.mark.parametrize(("url", "parameter"), [
    ("/api/v1/releases/?application=99999999999999999999999", "application"),
    ("/api/v1/releases/?application=1e400", "application"),
    ("/api/v1/audit/?release=-5", "release"),
    ("/api/v1/dns/records/?application=99999999999999999999999", "application"),
    ("/api/v1/audit/?until=9999-12-31T23:59:59-12:00", "until"),
    ("/api/v1/audit/?since=0001-01-01T00:00:00%2B14:00", "since"),
    ("/api/v1/billing/reports/monthly/?month=9999-12", "month"),
    ("/api/v1/billing/reports/range/?start=2026-01-01&end=9999-12-31", "end"),
])
def test_out_of_range_query_values_are_a_400_naming_the_parameter(api, staff, url, parameter):
    response = api.as_user(staff).get(url)

    assert response.status_code == 400, response.content
    assert parameter in response.json()["extra"]["fields"]


@pytest.mark.parametrize("cpu", ["inf", "Infinity", "1e400", "NaN", "1e-9", "100000"])
def test_non_finite_or_absurd_cpu_quantities_are_refused(api, developer, project, cpu):
    body = {"project": project.slug, "name": "web", "image": "registry.example.com/shop/web", "cpu_request": cpu}

    response = api.as_user(developer).post("/api/v1/applications/", body, format="json")

    assert response.status_code == 400, response.content
    assert "cpu_request" in response.json()["extra"]["fields"]
    assert not Application.objects.filter(name="web").exists()


def test_unknown_api_paths_answer_json(api, developer):
    response = api.as_user(developer).get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_post_without_the_trailing_slash_reaches_the_endpoint(api, developer, app, prod):
    body = {"application": app.id, "environment": "prod", "version": "1.0", "image": PINNED.format(version="1.0")}

    response = api.as_user(developer).post("/api/v1/releases", body, format="json")

    assert response.status_code == 201, response.content
    assert Release.objects.count() == 1


@pytest.mark.parametrize("field,value", [
    ("project", "sh\x00op"), ("base_image", "tomcat\x00"), ("allowed_callers", ["api\x00"]),
    ("uses_middleware", ["cache\x00"]),
])
def test_a_nul_character_in_a_name_is_a_400_naming_the_field(api, developer, field, value):
    body = {"project": "shop", "name": "web", "image": "registry.example.com/shop/web", "port": 8080, field: value}

    response = api.as_user(developer).post("/api/v1/applications/", body, format="json")

    assert response.status_code == 400 and field in response.json()["extra"]["fields"]
    assert not Application.objects.filter(name="web").exists()


def test_a_nul_character_in_a_query_name_is_a_400(api, developer, app):
    response = api.as_user(developer).get(f"/api/v1/applications/{app.id}/pods/?environment=dev%00")

    assert response.status_code == 400 and "environment" in response.json()["extra"]["fields"]
