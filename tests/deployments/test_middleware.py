"""The middleware catalog and what its instances render to. No database."""
import kubernetes_validate
import pytest

from deployments import middleware
from deployments.manifests import REDACTED, ReleaseConfig, render, secret_filled, selector_labels
from deployments.models import Application, Environment, Project
from deployments.specs import MiddlewareSpec, UsedInstance
from paas_site.errors import ApplicationError
from tests.deployments.test_manifests import KUBERNETES_VERSION, by_kind, one, pod_labels_admitted, spec_for

IMAGE = "registry.example.com/base/redis:7.4@sha256:" + "a" * 64


def instance_app(template: middleware.MiddlewareTemplate, name: str = "cache", **variables) -> Application:
    values = middleware.variables_validate(template, variables)
    return Application(project=Project(slug="shop"), name=name, image="registry.example.com/base/x",
                       port=template.port, health_path=template.health_path, **template.resources(values))


def render_for(app: Application, *, template=None, variables=None, uses=()) -> list[dict]:
    values = middleware.variables_validate(template, variables or {}) if template else {}
    config = template.config(values) if template else {"env": {}, "files": {}}
    spec = spec_for(
        app, Environment(name="dev", namespace_pattern="{project}-{environment}"),
        uses=[UsedInstance(name=used.name, port=used.port) for used in uses],
        middleware=MiddlewareSpec(template=template.name, variables=values) if template else None,
    )
    return render(spec=spec, image=IMAGE, config=ReleaseConfig(env=config["env"], files=config["files"]), release="7")


def test_defaults_fill_in_what_is_not_given():
    values = middleware.variables_validate(middleware.REDIS, {"maxmemory_mb": 512})

    assert values == {"version": "7.4", "maxmemory_mb": 512, "maxmemory_policy": "allkeys-lru", "databases": 16}


def test_a_change_keeps_the_current_values_of_the_other_variables():
    current = middleware.variables_validate(middleware.REDIS, {"maxmemory_mb": 512, "databases": 4})

    values = middleware.variables_validate(middleware.REDIS, {"databases": 8}, current=current)

    assert (values["maxmemory_mb"], values["databases"]) == (512, 8)


@pytest.mark.parametrize(("variables", "field", "reason"), [
    ({"maxmemory_mb": 1}, "variables.maxmemory_mb", "less than the minimum of 16"),
    ({"maxmemory_mb": "256"}, "variables.maxmemory_mb", "is not of type 'integer'"),
    ({"maxmemory_mb": True}, "variables.maxmemory_mb", "is not of type 'integer'"),
    ({"version": "6.0"}, "variables.version", "is not one of"),
    ({"maxmemory_policy": "sometimes"}, "variables.maxmemory_policy", "is not one of"),
    ({"password": "mine"}, "variables.password", "unknown variable"),
])
def test_a_bad_variable_is_named_with_its_reason(variables, field, reason):
    with pytest.raises(ApplicationError) as error:
        middleware.variables_validate(middleware.REDIS, variables)

    assert list(error.value.extra["fields"]) == [field]
    assert reason in error.value.extra["fields"][field][0]
    assert error.value.message.startswith(f"{field}: ")


def test_variables_must_be_an_object():
    with pytest.raises(ApplicationError) as error:
        middleware.variables_validate(middleware.NGINX, ["gzip"])

    assert list(error.value.extra["fields"]) == ["variables"]


def test_every_variable_has_a_default_its_own_schema_accepts():
    for template in middleware.TEMPLATES.values():
        assert middleware.variables_validate(template, {}) == template.defaults


def test_secrets_are_generated_fresh_and_long():
    first, second = (middleware.secrets_generate(middleware.REDIS) for _ in range(2))

    assert set(first) == {"password"} and len(first["password"]) >= 32
    assert first != second


def test_connection_settings_carry_the_password_and_the_masked_ones_do_not():
    settings = middleware.connection_settings(
        middleware.REDIS, host="cache", variables=middleware.REDIS.defaults, secrets={"password": "s3cret"}
    )
    masked = middleware.connection_settings_masked(middleware.REDIS, host="cache", variables=middleware.REDIS.defaults)

    assert settings["REDIS_URL"] == "redis://:s3cret@cache:6379/0"
    assert masked["REDIS_URL"] == f"redis://:{middleware.MASK}@cache:6379/0"
    assert "s3cret" not in str(masked)


@pytest.mark.parametrize("template", middleware.TEMPLATES.values(), ids=lambda t: t.name)
def test_each_template_exposes_exactly_the_keys_it_declares(template):
    settings = middleware.connection_settings(
        template, host="x", variables=template.defaults, secrets=middleware.secrets_generate(template)
    )
    assert tuple(settings) == template.connection_keys


@pytest.mark.parametrize("template", middleware.TEMPLATES.values(), ids=lambda t: t.name)
def test_every_object_of_an_instance_is_accepted_by_the_kubernetes_schema(template):
    objects = render_for(instance_app(template), template=template)

    for obj in objects:
        assert kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION


def test_a_redis_instance_reads_its_password_from_its_own_secret_which_is_rendered_redacted():
    objects = render_for(instance_app(middleware.REDIS, maxmemory_mb=100), template=middleware.REDIS,
                         variables={"maxmemory_mb": 100})

    secret = one(objects, "Secret")
    assert secret["metadata"]["name"] == "cache-connection"
    assert secret["data"] == {key: REDACTED for key in middleware.REDIS.connection_keys}
    kinds = [obj["kind"] for obj in objects]
    assert kinds.index("Secret") < kinds.index("Deployment")
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["redis-server", "/usr/local/etc/redis/redis.conf", "--requirepass", "$(REDIS_PASSWORD)"]
    assert {"name": "REDIS_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "cache-connection", "key": "REDIS_PASSWORD"}}} in container["env"]
    assert container["volumeMounts"][0]["mountPath"] == "/usr/local/etc/redis"
    assert "maxmemory 100mb" in one(objects, "ConfigMap")["data"]["redis.conf"]
    assert container["resources"]["limits"]["memory"] == "132Mi"
    assert "tcpSocket" in container["readinessProbe"]


def test_a_filled_secret_carries_the_values_base64_and_leaves_the_redacted_one_alone():
    secret = one(render_for(instance_app(middleware.REDIS), template=middleware.REDIS), "Secret")

    filled = secret_filled(secret, {"REDIS_URL": "redis://:pw@cache:6379/0"})

    assert filled["data"] == {"REDIS_URL": "cmVkaXM6Ly86cHdAY2FjaGU6NjM3OS8w"}
    assert secret["data"]["REDIS_URL"] == REDACTED
    assert filled["metadata"] == secret["metadata"]


def test_an_application_using_instances_gets_their_settings_as_env_and_may_reach_them():
    cache, coordination = instance_app(middleware.REDIS), instance_app(middleware.ZOOKEEPER, name="zk")
    api = Application(project=Project(slug="shop"), name="api", image="registry.example.com/shop/api")

    objects = render_for(api, uses=[cache, coordination])

    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "cache-connection"}}, {"secretRef": {"name": "zk-connection"}}]
    assert not by_kind(objects, "Secret")  # the instances own their Secrets
    env = Environment(name="dev")
    policies = {p["metadata"]["name"]: p for p in by_kind(objects, "NetworkPolicy")}
    to_cache = policies["api-to-cache"]
    assert to_cache["spec"]["podSelector"]["matchLabels"] == selector_labels(cache, env)
    assert to_cache["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 6379}]
    assert pod_labels_admitted(to_cache, selector_labels(api, env))
    assert not pod_labels_admitted(to_cache, {"app.kubernetes.io/name": "other"})
    assert policies["api-to-zk"]["spec"]["ingress"][0]["ports"][0]["port"] == 2181


def test_an_application_using_nothing_gets_no_env_from():
    api = Application(project=Project(slug="shop"), name="api", image="registry.example.com/shop/api")

    container = one(render_for(api), "Deployment")["spec"]["template"]["spec"]["containers"][0]

    assert "envFrom" not in container and "args" not in container


def test_nginx_serves_its_health_path_on_its_port_and_sets_replicas_from_its_variables():
    app = instance_app(middleware.NGINX, replicas=3)
    objects = render_for(app, template=middleware.NGINX, variables={"replicas": 3, "gzip": False})

    config = one(objects, "ConfigMap")["data"]["default.conf"]
    assert "listen 8080;" in config and "location = /healthz" in config and "gzip off;" in config
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["volumeMounts"][0]["mountPath"] == "/etc/nginx/conf.d"


def test_zookeeper_is_configured_through_environment_variables():
    objects = render_for(instance_app(middleware.ZOOKEEPER, name="zk"), template=middleware.ZOOKEEPER,
                         variables={"heap_mb": 1024, "tick_time_ms": 3000})

    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["ZOO_TICK_TIME"] == "3000" and env["JVMFLAGS"] == "-Xmx1024m"
    assert one(objects, "Secret")["data"] == {key: REDACTED for key in middleware.ZOOKEEPER.connection_keys}
