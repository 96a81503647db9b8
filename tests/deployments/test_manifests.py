"""The rendered Kubernetes objects, checked against the API schemas and for what they let happen. No database."""
import itertools
import re

import kubernetes_validate
import pytest
import yaml

from deployments.manifests import (
    CONFIG_HASH_ANNOTATION,
    INGRESS_CONTROLLER_NAMESPACE,
    ReleaseConfig,
    manifests_digest,
    namespace_name,
    render,
    selector_labels,
)
from deployments.models import Application, BaseImage, Cluster, Environment, Project
from deployments.specs import DEFAULT_CONFIG_PATH, spec_build

# The newest Kubernetes schemas kubernetes-validate 1.37.0 ships.
KUBERNETES_VERSION = "1.37"
DIGEST_IMAGE = "registry.example.com/shop/api@sha256:" + "a" * 64
CONFIG = ReleaseConfig(env={"LOG_LEVEL": "info", "DATABASE_HOST": "db"}, files={"app.properties": "greeting=hello\n"})


def make_app(name: str = "api", *, base_image: bool = False, exposed: bool = False, autoscaling: bool = False, **fields):
    """An unsaved Application of project "shop": rendering must not need the database."""
    if autoscaling:
        fields |= {"autoscaling_min": 2, "autoscaling_max": 6, "autoscaling_target_cpu": 70}
    app = Application(project=Project(slug="shop"), name=name, exposed=exposed, **fields)
    if base_image:
        app.base_image = BaseImage(name="tomcat", image="slipway/base/tomcat:10.1", config_path="/usr/local/tomcat/conf/app")
    else:
        app.image = "registry.example.com/shop/api"
    return app


def make_env() -> Environment:
    return Environment(name="prod", rollout_deadline_seconds=120, namespace_pattern="{project}-{environment}")


def spec_for(app: Application, env: Environment | None = None, *, ingress_class: str = "nginx", **related):
    """The deploy spec of unsaved rows (``related``: hostname, allowed_callers, uses, middleware)."""
    env = env or make_env()
    cluster = Cluster(name="prod-cluster", ingress_class=ingress_class)
    return spec_build(app, env, namespace=namespace_name(app, env), cluster=cluster, **related)


def render_app(app: Application | None = None, **overrides) -> list[dict]:
    app = app or make_app()
    related = {"hostname": "api.shop.example.com" if app.exposed else None, "allowed_callers": []}
    related |= {key: overrides.pop(key) for key in ("hostname", "allowed_callers", "ingress_class") if key in overrides}
    arguments = {"image": DIGEST_IMAGE, "config": CONFIG, "release": "42"}
    return render(spec=spec_for(app, **related), **arguments | overrides)


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[dict], kind: str) -> dict:
    (obj,) = by_kind(objects, kind)
    return obj


def allow_policy(objects: list[dict]) -> dict:
    return next(obj for obj in objects if obj["metadata"]["name"].endswith("-allow-ingress"))


def pod_labels_admitted(policy: dict, pod_labels: dict[str, str]) -> bool:
    """Whether a pod of the policy's own namespace with these labels may connect: the subset of the semantics we use."""
    for rule in policy["spec"]["ingress"]:
        for peer in rule["from"]:
            selector = peer.get("podSelector")
            if selector is None or "namespaceSelector" in peer:
                continue
            if all(pod_labels.get(e["key"]) in e["values"] for e in selector["matchExpressions"]):
                return True
    return False


@pytest.mark.parametrize(
    "exposed, autoscaling, base_image, callers", list(itertools.product([False, True], repeat=4))
)
def test_every_object_is_accepted_by_the_kubernetes_schema(exposed, autoscaling, base_image, callers):
    app = make_app(exposed=exposed, autoscaling=autoscaling, base_image=base_image)

    objects = render_app(app, allowed_callers=["web", "worker"] if callers else [])

    for obj in objects:
        # strict: an unknown or misplaced field fails, as the API server would drop or reject it
        assert kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION


def test_objects_come_in_apply_order():
    everything = render_app(make_app(exposed=True, autoscaling=True))
    minimal = render_app(make_app())

    assert [obj["kind"] for obj in everything] == [
        "Namespace", "ResourceQuota", "NetworkPolicy", "NetworkPolicy", "ConfigMap", "Deployment", "Service", "Ingress",
        "HorizontalPodAutoscaler",
    ]
    assert [obj["kind"] for obj in minimal] == [
        "Namespace", "ResourceQuota", "NetworkPolicy", "NetworkPolicy", "ConfigMap", "Deployment", "Service",
    ]


def test_everything_lives_in_the_namespace_of_project_and_environment():
    app = make_app(exposed=True, autoscaling=True)

    namespace, *namespaced = render_app(app)

    assert namespace_name(app, make_env()) == "shop-prod"
    assert namespace["metadata"] == {
        "name": "shop-prod",
        "labels": {"app.kubernetes.io/managed-by": "slipway", "slipway.dev/project": "shop", "slipway.dev/environment": "prod"},
    }
    assert {obj["metadata"]["namespace"] for obj in namespaced} == {"shop-prod"}


def test_namespace_wide_objects_are_the_same_for_every_application():
    api, web = render_app(make_app("api")), render_app(make_app("web", exposed=True), allowed_callers=["api"])

    assert api[:3] == web[:3]
    assert one(api, "ResourceQuota")["spec"]["hard"] == {
        "requests.cpu": "8", "requests.memory": "16Gi", "limits.cpu": "16", "limits.memory": "32Gi", "pods": "100",
    }
    assert api[2]["metadata"]["name"] == "default-deny-ingress"
    assert api[2]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert "app.kubernetes.io/name" not in api[2]["metadata"]["labels"]


def test_application_objects_carry_the_common_labels():
    objects = render_app(make_app(exposed=True, autoscaling=True))

    common = {
        "app.kubernetes.io/name": "api",
        "app.kubernetes.io/instance": "api-prod",
        "app.kubernetes.io/managed-by": "slipway",
        "slipway.dev/project": "shop",
        "slipway.dev/environment": "prod",
    }
    for obj in objects[3:]:
        assert obj["metadata"]["labels"].items() >= common.items(), obj["kind"]


def test_selectors_exclude_the_release_and_pods_carry_it():
    objects = render_app(release="43")
    deployment, service = one(objects, "Deployment"), one(objects, "Service")
    stable = {"app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "api-prod"}

    assert selector_labels(make_app(), make_env()) == stable
    assert deployment["spec"]["selector"] == {"matchLabels": stable}
    assert service["spec"]["selector"] == stable
    assert allow_policy(objects)["spec"]["podSelector"] == {"matchLabels": stable}
    assert deployment["metadata"]["labels"]["slipway.dev/release"] == "43"
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert template_labels["slipway.dev/release"] == "43"
    assert template_labels.items() >= stable.items()


def test_same_inputs_render_identical_objects():
    reordered = ReleaseConfig(env=dict(reversed(CONFIG.env.items())), files=dict(CONFIG.files))

    first, second = render_app(), render_app(config=reordered)

    assert first == second
    assert manifests_digest(first) == manifests_digest(second)
    assert CONFIG.hash() == reordered.hash()


@pytest.mark.parametrize(
    "changed",
    [
        ReleaseConfig(env=CONFIG.env | {"LOG_LEVEL": "debug"}, files=CONFIG.files),
        ReleaseConfig(env=CONFIG.env | {"NEW": "1"}, files=CONFIG.files),
        ReleaseConfig(env=CONFIG.env, files={"app.properties": "greeting=bye\n"}),
        ReleaseConfig(env=CONFIG.env, files=CONFIG.files | {"extra.xml": "<x/>"}),
    ],
    ids=["env-value", "env-added", "file-content", "file-added"],
)
def test_a_config_change_changes_the_pod_template_so_pods_roll(changed):
    def pod_config_hash(objects):
        return one(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]

    before, after = render_app(), render_app(config=changed)

    assert pod_config_hash(before) == CONFIG.hash()
    assert pod_config_hash(after) == changed.hash() != CONFIG.hash()
    assert manifests_digest(after) != manifests_digest(before)


def test_deployment_spec():
    app = make_app(replicas=3, port=9000, health_path="/ready", cpu_request="250m", cpu_limit="1", memory_request="256Mi")

    deployment = one(render_app(app), "Deployment")

    spec = deployment["spec"]
    assert (spec["replicas"], spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (3, 5, 120)
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["name"] == "api"
    assert container["image"] == DIGEST_IMAGE
    assert container["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert container["env"] == [{"name": "DATABASE_HOST", "value": "db"}, {"name": "LOG_LEVEL", "value": "info"}]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "256Mi"},
    }
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["initialDelaySeconds"] > container["readinessProbe"]["initialDelaySeconds"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False}


def test_servers_without_http_are_probed_by_tcp_connect():
    container = one(render_app(make_app(health_path="", port=6379)), "Deployment")["spec"]["template"]["spec"]["containers"][0]

    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["tcpSocket"] == {"port": "http"}
        assert "httpGet" not in container[probe]


@pytest.mark.parametrize("base_image, mount_path", [(True, "/usr/local/tomcat/conf/app"), (False, DEFAULT_CONFIG_PATH)])
def test_config_files_are_mounted_at_the_config_path(base_image, mount_path):
    objects = render_app(make_app(base_image=base_image))

    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    config_map = one(objects, "ConfigMap")
    assert config_map["metadata"]["name"] == "api-config"
    assert config_map["data"] == {"app.properties": "greeting=hello\n"}
    assert pod["volumes"] == [{"name": "config", "configMap": {"name": "api-config"}}]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "config", "mountPath": mount_path, "readOnly": True}]


def test_an_empty_config_still_renders_its_config_map():
    config_map = one(render_app(config=ReleaseConfig(env={}, files={})), "ConfigMap")

    assert config_map["data"] == {}


def test_service_targets_the_named_container_port():
    service = one(render_app(make_app(port=9000)), "Service")

    assert service["metadata"]["name"] == "api"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 9000, "targetPort": "http", "protocol": "TCP"}]


def test_autoscaling_hands_replicas_to_the_hpa():
    objects = render_app(make_app(autoscaling=True, replicas=3))

    assert "replicas" not in one(objects, "Deployment")["spec"]
    assert one(objects, "HorizontalPodAutoscaler")["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
        "minReplicas": 2,
        "maxReplicas": 6,
        "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
        ],
    }


def test_without_autoscaling_there_is_no_hpa():
    assert by_kind(render_app(make_app(replicas=2)), "HorizontalPodAutoscaler") == []


def test_an_exposed_application_gets_an_ingress_for_its_hostname():
    objects = render_app(make_app(exposed=True, port=9000), hostname="shop.example.com", ingress_class="public")

    assert one(objects, "Ingress")["spec"] == {
        "ingressClassName": "public",
        "rules": [
            {
                "host": "shop.example.com",
                "http": {
                    "paths": [
                        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "api", "port": {"number": 9000}}}}
                    ]
                },
            }
        ],
    }


def test_an_internal_application_gets_no_ingress_and_admits_no_ingress_controller():
    objects = render_app(make_app(exposed=False))

    assert by_kind(objects, "Ingress") == []
    assert "namespaceSelector" not in str(allow_policy(objects))


def test_an_exposed_application_admits_the_ingress_controller_on_its_port():
    policy = allow_policy(render_app(make_app(exposed=True, port=9000)))

    assert policy["spec"]["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": INGRESS_CONTROLLER_NAMESPACE}}}],
            "ports": [{"protocol": "TCP", "port": 9000}],
        }
    ]


def test_network_policy_admits_allowed_callers_in_one_direction_only():
    # given: "a" may call "b"
    b_objects = render_app(make_app("b"), allowed_callers=["a"])
    a_objects = render_app(make_app("a"), allowed_callers=[])

    # then: b's policy admits pods of a, on b's port only
    b_policy = allow_policy(b_objects)
    assert b_policy["metadata"]["name"] == "b-allow-ingress"
    assert b_policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert pod_labels_admitted(b_policy, {"app.kubernetes.io/name": "a"})
    assert not pod_labels_admitted(b_policy, {"app.kubernetes.io/name": "c"})
    # and nothing lets b call a
    assert not pod_labels_admitted(allow_policy(a_objects), {"app.kubernetes.io/name": "b"})


def test_without_callers_or_exposure_the_policy_admits_nobody():
    # A rule with an empty "from" would admit every source, so there must be no rule at all.
    policy = allow_policy(render_app(make_app(exposed=False), allowed_callers=[]))

    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == []


def test_callers_are_listed_once_and_in_a_stable_order():
    policy = allow_policy(render_app(allowed_callers=["worker", "web", "worker"]))

    (peer,) = policy["spec"]["ingress"][0]["from"]
    assert peer["podSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/name", "operator": "In", "values": ["web", "worker"]}
    ]


def test_config_values_that_look_like_yaml_stay_strings():
    sneaky = "x\nkind: Secret\n---\napiVersion: v1\nkind: Secret"
    json_like = '{"kind": "Secret", "metadata": {"name": "x"}}'
    config = ReleaseConfig(env={"PAYLOAD": sneaky}, files={"app.yaml": sneaky, "app.json": json_like})

    objects = render_app(config=config)

    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert one(objects, "ConfigMap")["data"] == {"app.yaml": sneaky, "app.json": json_like}
    assert {"name": "PAYLOAD", "value": sneaky} in container["env"]
    # as the adapter would serialize them: still the same objects, and no Secret appears
    assert list(yaml.safe_load_all(yaml.safe_dump_all(objects))) == objects
    assert by_kind(objects, "Secret") == []


@pytest.mark.parametrize("name", ["1ST", "MY-VAR", "MY VAR", "A=B", "", "ÄPFEL"])
def test_a_bad_environment_variable_name_is_rejected_by_name(name):
    with pytest.raises(ValueError, match=re.escape(f"environment variable name {name!r}")):
        render_app(config=ReleaseConfig(env={name: "x"}, files={}))


@pytest.mark.parametrize("name", ["conf/app.xml", "..", ".", "../etc", "..data", "a b", "", "x" * 254])
def test_a_bad_config_file_name_is_rejected_by_name(name):
    with pytest.raises(ValueError, match=re.escape(f"config file name {name!r}")):
        render_app(config=ReleaseConfig(env={}, files={name: "x"}))


def test_a_config_value_that_is_not_a_string_is_rejected():
    with pytest.raises(ValueError, match="environment variable 'PORT' must be a string, not int"):
        render_app(config=ReleaseConfig(env={"PORT": 8080}, files={}))


def test_an_exposed_application_needs_a_hostname():
    with pytest.raises(ValueError, match="'api' is exposed"):
        render_app(make_app(exposed=True), hostname=None)


@pytest.mark.parametrize("release", ["-42", "release 42", "r" * 64])
def test_a_release_that_cannot_be_a_label_is_rejected(release):
    with pytest.raises(ValueError, match="release"):
        render_app(release=release)


def test_an_empty_release_is_a_valid_label():
    # A deployment without a workflow release (e.g. applied by hand) has none.
    deployment = one(render_app(release=""), "Deployment")

    assert deployment["spec"]["template"]["metadata"]["labels"]["slipway.dev/release"] == ""


def test_an_application_name_too_long_for_the_instance_label_is_rejected():
    with pytest.raises(ValueError, match="instance label"):
        render_app(make_app("a" * 60))


def test_an_application_name_starting_with_a_digit_is_rejected():
    # A valid RFC 1123 label, but a Service name must start with a letter.
    with pytest.raises(ValueError, match="'0day' cannot name a Service"):
        render_app(make_app("0day"))


def test_a_malformed_image_reference_is_rejected():
    with pytest.raises(ValueError, match="not a valid image reference"):
        render_app(image="Registry.example.com/UPPER CASE")


def test_a_tag_is_accepted_as_image():
    deployment = one(render_app(image="registry.example.com/shop/api:1.4.2"), "Deployment")

    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/shop/api:1.4.2"
