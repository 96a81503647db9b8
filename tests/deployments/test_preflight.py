"""Slipway refuses, before it touches a cluster, manifests a Kubernetes API server would reject.

The check is the sandbox admission's own (`deployments.kubevalidation`); its
refusals name the application field that produced the bad value.
"""
import dataclasses
from decimal import Decimal

import pytest

from deployments import preflight, services
from deployments.kubevalidation import parse_quantity
from deployments.manifests import render
from deployments.models import Application
from paas_site.errors import ApplicationError
from tests.deployments.factories import ApplicationFactory, EnvironmentFactory, deploy_spec
from tests.deployments.test_manifests import CONFIG, DIGEST_IMAGE, make_app, spec_for
from tests.workflows.factories import file_release
from workflows.models import Release


def refusals(*, hostname: str | None = None, **fields) -> dict[str, list[str]]:
    app = make_app(exposed=hostname is not None, **fields)
    objects = render(spec=spec_for(app, hostname=hostname), image=DIGEST_IMAGE, config=CONFIG, release="42")
    return preflight.manifest_refusals(objects)


@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("2", Decimal(2)), ("1Gi", Decimal(2**30)), ("1e3", Decimal(1000)),
    ("128M", Decimal(128 * 10**6)), (".5", Decimal("0.5")), ("lots", None), ("1 Gi", None), ("5Q", None),
])
def test_quantities_parse_as_the_api_server_reads_them(text, value):
    assert parse_quantity(text) == value


def test_what_slipway_renders_passes():
    assert refusals() == {}
    assert refusals(hostname="api.shop.example.com", autoscaling=True) == {}


@pytest.mark.parametrize(("fields", "field", "answer"), [
    ({"port": 70000}, "port",
     "Deployment api: spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: "
     "must be between 1 and 65535, inclusive"),
    ({"cpu_request": "2", "cpu_limit": "1"}, "cpu_request",
     'Deployment api: spec.template.spec.containers[0].resources.requests: Invalid value: "2": '
     "must be less than or equal to cpu limit of 1"),
    ({"cpu_request": "-1"}, "cpu_request",
     'Deployment api: spec.template.spec.containers[0].resources.requests[cpu]: Invalid value: "-1": '
     "must be greater than or equal to 0"),
    ({"memory_limit": "lots"}, "memory_limit",
     "Deployment api: quantities must match the regular expression"),
    ({"hostname": "Shop_API.example.com"}, "hostname",
     'Ingress api: spec.rules[0].host: Invalid value: "Shop_API.example.com": a lowercase RFC 1123 subdomain'),
    ({"autoscaling_min": 0, "autoscaling_max": 3, "autoscaling_target_cpu": 70}, "autoscaling_min",
     "HorizontalPodAutoscaler api: spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"),
])
def test_a_refusal_names_the_application_field(fields, field, answer):
    found = refusals(**fields)
    assert field in found, found
    assert any(f"the cluster would refuse {answer}" in reason for reason in found[field])


@pytest.mark.django_db
def test_filing_refuses_a_release_the_cluster_would_reject(developer, project):
    # given an application row holding a value its validators would refuse (written around them)
    app = ApplicationFactory(project=project, name="api", image="registry.example.com/shop/api")
    Application.objects.filter(id=app.id).update(cpu_request="2", cpu_limit="1")
    prod = EnvironmentFactory(name="prod")

    with pytest.raises(ApplicationError) as refused:
        file_release(actor=developer, application=Application.objects.get(id=app.id), environment=prod)

    assert refused.value.status_code == 400
    assert list(refused.value.extra["fields"]) == ["cpu_request"]
    assert refused.value.message.startswith("cpu_request: the cluster would refuse Deployment api:")
    assert not Release.objects.exists()


@pytest.mark.django_db
def test_deploy_refuses_before_the_first_object_reaches_the_cluster(project, sandbox_cluster, sandbox):
    env = EnvironmentFactory(name="dev", cluster=sandbox_cluster)
    app = ApplicationFactory(project=project, name="api")
    spec = dataclasses.replace(deploy_spec(app, env), port=70000)

    with pytest.raises(ApplicationError, match="^port: the cluster would refuse Deployment api"):
        services.deployment_apply(application_id=app.id, environment_id=env.id, spec=spec, image=DIGEST_IMAGE,
                                  config=CONFIG, release="1")

    assert sandbox.store.counts()["namespaces"] == 2  # default and kube-system only: nothing was applied
