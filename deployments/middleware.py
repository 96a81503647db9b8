"""The middleware catalog: templates for one-click instances ("I need a Redis"), pure.

A template is data: the base image whose repository provides the image (the
``version`` variable is its tag), port and probe, default resources, the
variables a user may set (JSON Schema, checked with ``jsonschema``), the
secrets Slipway generates, and the connection settings the instance offers
other applications of its project in the Secret ``<instance>-connection``.

Variables become the release's config, which approvers see; secrets never do.
They reach the cluster only inside that Secret, which revisions store redacted
(see ``manifests.connection_secret``) and the apply step fills in.
"""
import secrets as random_secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from paas_site.errors import invalid_fields

# Shown instead of a secret in listed connection settings.
MASK = "****"
SECRET_BYTES = 24  # 32 URL-safe characters: nothing to escape in a URL or a command line

Values = Mapping[str, Any]


@dataclass(frozen=True)
class MiddlewareTemplate:
    name: str
    display_name: str
    description: str
    base_image: str  # the BaseImage whose repository (a platform admin may point it at a mirror) gives the image
    port: int
    health_path: str  # "" = TCP connect probe
    variables: dict[str, dict[str, Any]]  # JSON Schema of each variable, each with a "default"
    resources: Callable[[Values], dict[str, Any]]  # Application fields (cpu/memory requests and limits, replicas)
    config: Callable[[Values], dict[str, dict[str, str]]]  # the release config: {"env": {...}, "files": {...}}
    connection: Callable[[str, Values, Values], dict[str, str]]  # (host, variables, secrets) -> settings
    secrets: tuple[str, ...] = ()  # generated per environment, never chosen by a user
    config_path: str = ""  # where the config files are mounted; "" = the platform's default
    args: tuple[str, ...] = ()  # container args; Kubernetes expands $(NAME) from the container's env
    secret_env: Mapping[str, str] = field(default_factory=dict)  # container env name -> key of the connection Secret

    @property
    def defaults(self) -> dict[str, Any]:
        return {name: spec["default"] for name, spec in self.variables.items()}

    @property
    def connection_keys(self) -> tuple[str, ...]:
        """The keys of the Secret ``<instance>-connection`` (the same for any host, variables and secrets)."""
        return tuple(self.connection("host", self.defaults, {name: MASK for name in self.secrets}))

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": self.variables, "additionalProperties": False}

    def image(self, repository: str, variables: Values) -> str:
        return f"{repository}:{variables['version']}"


def _version(*versions: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(versions), "default": versions[0], "description": "Image tag."}


def _integer(default: int, minimum: int, maximum: int, description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum, "default": default, "description": description}


def _redis_memory(variables: Values) -> str:
    # Headroom over maxmemory for fragmentation and buffers: Redis evicts before the kernel kills it.
    return f"{variables['maxmemory_mb'] + max(32, variables['maxmemory_mb'] // 4)}Mi"


REDIS = MiddlewareTemplate(
    name="redis",
    display_name="Redis",
    description="An in-memory cache (no persistence: data is lost when the pod restarts), password protected.",
    base_image="redis",
    port=6379,
    health_path="",
    variables={
        "version": _version("7.4", "7.2"),
        "maxmemory_mb": _integer(256, 16, 16384, "Memory for data, in MiB; the container gets a quarter more."),
        "maxmemory_policy": {
            "type": "string", "default": "allkeys-lru", "description": "What Redis evicts when memory is full.",
            "enum": ["noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
                     "volatile-random", "volatile-ttl"],
        },
        "databases": _integer(16, 1, 64, "Number of logical databases."),
    },
    resources=lambda v: {"cpu_request": "100m", "cpu_limit": "500m", "memory_request": _redis_memory(v),
                         "memory_limit": _redis_memory(v), "replicas": 1},
    config=lambda v: {"env": {}, "files": {"redis.conf": (
        "# Rendered by Slipway from the instance's variables; the password comes from the Secret.\n"
        "port 6379\nbind 0.0.0.0\nprotected-mode yes\n"
        f"maxmemory {v['maxmemory_mb']}mb\nmaxmemory-policy {v['maxmemory_policy']}\ndatabases {v['databases']}\n"
        'save ""\nappendonly no\n'
    )}},
    secrets=("password",),
    config_path="/usr/local/etc/redis",
    args=("redis-server", "/usr/local/etc/redis/redis.conf", "--requirepass", "$(REDIS_PASSWORD)"),
    secret_env={"REDIS_PASSWORD": "REDIS_PASSWORD"},
    connection=lambda host, v, s: {
        "REDIS_HOST": host, "REDIS_PORT": "6379", "REDIS_PASSWORD": s["password"],
        "REDIS_URL": f"redis://:{s['password']}@{host}:6379/0",
    },
)

ZOOKEEPER = MiddlewareTemplate(
    name="zookeeper",
    display_name="Apache ZooKeeper",
    description="A standalone ZooKeeper server (one node, no authentication) for coordination and configuration.",
    base_image="zookeeper",
    port=2181,
    health_path="",
    variables={
        "version": _version("3.9", "3.8"),
        "tick_time_ms": _integer(2000, 500, 10000, "ZooKeeper's basic time unit, in milliseconds."),
        "max_client_connections": _integer(60, 10, 5000, "Connections one client address may open."),
        "heap_mb": _integer(512, 128, 8192, "JVM heap, in MiB; the container gets 256 MiB more."),
    },
    resources=lambda v: {"cpu_request": "100m", "cpu_limit": "1", "memory_request": f"{v['heap_mb'] + 256}Mi",
                         "memory_limit": f"{v['heap_mb'] + 256}Mi", "replicas": 1},
    # The official image writes zoo.cfg from these variables.
    config=lambda v: {"env": {
        "ZOO_TICK_TIME": str(v["tick_time_ms"]), "ZOO_MAX_CLIENT_CNXNS": str(v["max_client_connections"]),
        "ZOO_AUTOPURGE_PURGEINTERVAL": "1", "ZOO_4LW_COMMANDS_WHITELIST": "ruok,srvr,mntr",
        "ZOO_STANDALONE_ENABLED": "true", "JVMFLAGS": f"-Xmx{v['heap_mb']}m",
    }, "files": {}},
    connection=lambda host, v, s: {
        "ZOOKEEPER_HOST": host, "ZOOKEEPER_PORT": "2181", "ZOOKEEPER_CONNECT": f"{host}:2181",
    },
)

NGINX = MiddlewareTemplate(
    name="nginx",
    display_name="NGINX",
    description="An NGINX web server on port 8080 serving /usr/share/nginx/html, with /healthz for probes.",
    base_image="nginx",
    port=8080,
    health_path="/healthz",
    variables={
        "version": _version("1.27", "1.26"),
        "client_max_body_size_mb": _integer(10, 1, 1024, "Largest request body accepted, in MiB."),
        "gzip": {"type": "boolean", "default": True, "description": "Compress responses."},
        "replicas": _integer(2, 1, 10, "Number of pods (NGINX keeps no state)."),
    },
    resources=lambda v: {"cpu_request": "50m", "cpu_limit": "500m", "memory_request": "64Mi",
                         "memory_limit": "128Mi", "replicas": v["replicas"]},
    config=lambda v: {"env": {}, "files": {"default.conf": (
        "# Rendered by Slipway from the instance's variables.\n"
        "server {\n    listen 8080;\n    server_name _;\n"
        f"    client_max_body_size {v['client_max_body_size_mb']}m;\n"
        f"    gzip {'on' if v['gzip'] else 'off'};\n"
        '    location = /healthz { access_log off; return 200 "ok\\n"; }\n'
        "    location / { root /usr/share/nginx/html; index index.html; }\n}\n"
    )}},
    config_path="/etc/nginx/conf.d",
    connection=lambda host, v, s: {"NGINX_HOST": host, "NGINX_PORT": "8080", "NGINX_URL": f"http://{host}:8080"},
)

TEMPLATES: dict[str, MiddlewareTemplate] = {t.name: t for t in (REDIS, ZOOKEEPER, NGINX)}


def connection_secret_name(instance_name: str) -> str:
    return f"{instance_name}-connection"


def variables_validate(template: MiddlewareTemplate, raw: Any, *, current: Values | None = None) -> dict[str, Any]:
    """The complete variables (``raw`` over ``current`` over the defaults), or a 400 naming each bad one."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise invalid_fields({"variables": ["must be an object of variable names to values."]})
    values = template.defaults | dict(current or {}) | raw
    errors: dict[str, list[str]] = {}
    for error in Draft202012Validator(template.schema()).iter_errors(values):
        if error.validator == "additionalProperties":
            known = ", ".join(template.variables)
            for name in sorted(set(values) - set(template.variables)):
                errors[f"variables.{name}"] = [f"unknown variable; {template.name} has: {known}."]
        else:
            name = f"variables.{error.path[0]}" if error.path else "variables"
            errors.setdefault(name, []).append(error.message)
    if errors:
        raise invalid_fields(errors)
    return values


def secrets_generate(template: MiddlewareTemplate) -> dict[str, str]:
    return {name: random_secrets.token_urlsafe(SECRET_BYTES) for name in template.secrets}


def connection_settings(template: MiddlewareTemplate, *, host: str, variables: Values, secrets: Values) -> dict[str, str]:
    return template.connection(host, variables, secrets)


def connection_settings_masked(template: MiddlewareTemplate, *, host: str, variables: Values) -> dict[str, str]:
    """What may be shown to anyone who sees the instance: the settings with every secret masked."""
    return template.connection(host, variables, {name: MASK for name in template.secrets})
