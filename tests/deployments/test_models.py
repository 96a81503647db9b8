import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from deployments.images import parse_image_reference
from deployments.models import BaseImage, Cluster, Environment
from tests.deployments.factories import ApplicationFactory, ClusterFactory, EnvironmentFactory, base_image

pytestmark = pytest.mark.django_db

KUBECONFIG = """
apiVersion: v1
kind: Config
current-context: ctx
clusters:
- name: c1
  cluster: {server: "https://10.1.2.3:6443"}
users:
- name: u1
  user: {token: abc}
contexts:
- name: ctx
  context: {cluster: c1, user: u1}
"""


def errors_of(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as excinfo:
        instance.full_clean()
    return excinfo.value.message_dict


@pytest.mark.parametrize("name", ["Shop", "-shop", "shop-", "a" * 41, "sh_op", "sh.op", "", "0day"])
def test_application_name_must_be_an_rfc1123_label(name):
    app = ApplicationFactory.build(project=ApplicationFactory().project, name=name)
    assert "name" in errors_of(app)


@pytest.mark.parametrize("name", ["a", "shop-api", "a" * 40, "api2"])
def test_valid_application_names_pass(name):
    ApplicationFactory.build(project=ApplicationFactory().project, name=name).full_clean()


@pytest.mark.parametrize(
    ("field", "value"),
    [("cpu_request", "lots"), ("cpu_limit", "1.5.0"), ("memory_request", "512MB!"), ("memory_limit", "-1Gi")],
)
def test_unparsable_quantities_are_rejected(field, value):
    app = ApplicationFactory.build(project=ApplicationFactory().project, **{field: value})
    assert field in errors_of(app)


def test_limits_below_requests_are_rejected():
    app = ApplicationFactory.build(
        project=ApplicationFactory().project, cpu_request="500m", cpu_limit="250m",
        memory_request="1Gi", memory_limit="512Mi",
    )
    errors = errors_of(app)
    assert "must be at least cpu_request" in errors["cpu_limit"][0]
    assert "must be at least memory_request" in errors["memory_limit"][0]


def test_equal_quantities_in_other_units_pass():
    ApplicationFactory.build(
        project=ApplicationFactory().project, cpu_request="1", cpu_limit="1000m",
        memory_request="1Gi", memory_limit="1024Mi",
    ).full_clean()


def test_autoscaling_min_above_max_is_rejected():
    app = ApplicationFactory.build(
        project=ApplicationFactory().project, autoscaling_min=5, autoscaling_max=2, autoscaling_target_cpu=70
    )
    assert "autoscaling_max" in errors_of(app)["autoscaling_min"][0]


def test_autoscaling_needs_all_three_values():
    app = ApplicationFactory.build(project=ApplicationFactory().project, autoscaling_min=2)
    assert "autoscaling_min" in errors_of(app)


@pytest.mark.parametrize("port", [0, 65536])
def test_port_out_of_range_is_rejected(port):
    assert "port" in errors_of(ApplicationFactory.build(project=ApplicationFactory().project, port=port))


def test_application_needs_exactly_one_image_source():
    project = ApplicationFactory().project
    assert "image" in errors_of(ApplicationFactory.build(project=project, image="", base_image=None))
    assert "image" in errors_of(ApplicationFactory.build(project=project, base_image=base_image("tomcat")))


def test_the_catalog_is_seeded():
    seeded = BaseImage.objects.filter(name__in=["tomcat", "jboss", "nginx", "redis", "zookeeper"])
    assert sorted(seeded.values_list("default_port", flat=True)) == [2181, 6379, 8080, 8080, 8080]


@pytest.mark.parametrize(
    ("reference", "registry", "repository", "tag"),
    [
        ("nginx", "", "nginx", ""),
        ("library/nginx:1.27", "", "library/nginx", "1.27"),
        ("registry.example.com:5000/team/app:v1.2-rc1", "registry.example.com:5000", "team/app", "v1.2-rc1"),
        ("localhost/app@sha256:" + "a" * 64, "localhost", "app", ""),
    ],
)
def test_image_references_are_parsed(reference, registry, repository, tag):
    parsed = parse_image_reference(reference)
    assert (parsed.registry, parsed.repository, parsed.tag) == (registry, repository, tag)
    assert str(parsed) == reference


@pytest.mark.parametrize("reference", ["", "UPPER/case", "app:", "app@sha256:short", "a b", "app:" + "x" * 129])
def test_bad_image_references_are_rejected(reference):
    with pytest.raises(ValueError):
        parse_image_reference(reference)


def test_cluster_token_is_encrypted_at_rest():
    cluster = ClusterFactory(token="very-secret-token")
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM deployments_cluster WHERE id = %s", [cluster.id])
        raw = cursor.fetchone()[0]
    assert "very-secret-token" not in raw
    assert Cluster.objects.get(id=cluster.id).token == "very-secret-token"


def test_kubeconfig_cluster_takes_its_server_from_the_kubeconfig():
    cluster = Cluster(name="kc", auth_method="kubeconfig", kubeconfig=KUBECONFIG)
    cluster.full_clean()
    assert cluster.api_server == "https://10.1.2.3:6443"


@pytest.mark.parametrize(
    ("kubeconfig", "reason"),
    [
        ("clusters: [unclosed", "not valid YAML"),
        ("- just a list", "not a kubeconfig"),
        (KUBECONFIG.replace("current-context: ctx", "current-context: nope"), "'nope'"),
        (KUBECONFIG.replace("user: u1}", "user: ghost}"), "known user"),
    ],
)
def test_broken_kubeconfigs_are_rejected_with_the_reason(kubeconfig, reason):
    cluster = Cluster(name="kc", auth_method="kubeconfig", kubeconfig=kubeconfig)
    assert reason in errors_of(cluster)["kubeconfig"][0]


def test_token_cluster_needs_a_token_and_a_valid_ca():
    cluster = Cluster(name="tc", api_server="https://k:6443", auth_method="token", ca_certificate="not a cert")
    errors = errors_of(cluster)
    assert "token" in errors and "ca_certificate" in errors


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [("{project}-{stage}", "placeholders"), ("static", "must contain {project}"), ("{project}_{environment}", "RFC")],
)
def test_environment_namespace_pattern_is_validated(pattern, reason):
    env = EnvironmentFactory.build(cluster=ClusterFactory(), namespace_pattern=pattern)
    assert reason in errors_of(env)["namespace_pattern"][0]


def test_environment_renders_namespaces():
    env = Environment(name="prod", namespace_pattern="{project}-{environment}")
    assert env.namespace_for("shop") == "shop-prod"
