"""The Kubernetes objects of one application in one environment, built as data.

Pure: no database, no I/O. Objects are plain dicts, never templated text, so a
config value can only ever become a string value, never YAML structure.
"""
import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .images import parse_image_reference
from .middleware import MiddlewareTemplate, connection_secret_name
from .models import Application, Environment

Manifest = dict[str, Any]

DEFAULT_CONFIG_PATH = "/etc/slipway/config"
INGRESS_CONTROLLER_NAMESPACE = "ingress-nginx"

QUOTA_NAME = "slipway-quota"
QUOTA_HARD = {"requests.cpu": "8", "requests.memory": "16Gi", "limits.cpu": "16", "limits.memory": "32Gi", "pods": "100"}
DEFAULT_DENY_POLICY_NAME = "default-deny-ingress"
REVISION_HISTORY_LIMIT = 5
READINESS_INITIAL_DELAY_SECONDS = 5
# Long enough for a JVM middleware to start: liveness must not kill a pod that is merely slow to boot.
LIVENESS_INITIAL_DELAY_SECONDS = 60

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
PROJECT_LABEL = "slipway.dev/project"
ENVIRONMENT_LABEL = "slipway.dev/environment"
RELEASE_LABEL = "slipway.dev/release"
CONFIG_HASH_ANNOTATION = "slipway.dev/config-hash"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
MANAGED_BY = "slipway"

PORT_NAME = "http"
CONFIG_VOLUME = "config"
# What a revision stores instead of a Secret's values; the apply step fills in the real ones.
REDACTED = "(redacted: filled in by the apply step)"

_ENV_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONFIG_MAP_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
_LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")  # empty is allowed
_RFC1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class ReleaseConfig:
    """What a release configures: environment variables, and files mounted at the config path."""

    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)

    def hash(self) -> str:
        """Independent of key order, so pods roll on a real change of config and only then."""
        return _sha256({"env": dict(self.env), "files": dict(self.files)})


def render(
    *,
    application: Application,
    environment: Environment,
    image: str,
    config: ReleaseConfig,
    release: str,
    allowed_callers: Sequence[str],
    hostname: str | None,
    ingress_class: str = "nginx",
    middleware: MiddlewareTemplate | None = None,
    uses: Sequence[Application] = (),
) -> list[Manifest]:
    """All objects for one application in one environment, in apply order.

    ``middleware`` is the template when the application is a middleware instance;
    ``uses`` are the middleware instances (their applications) it connects to.
    """
    _check_inputs(application, environment, image=image, config=config, release=release, hostname=hostname)
    objects = [
        _namespace(application, environment),
        _resource_quota(application, environment),
        _default_deny_ingress_policy(application, environment),
        _allow_ingress_policy(application, environment, allowed_callers),
        *(_caller_policy(application, environment, instance) for instance in uses),
        _config_map(application, environment, config),
    ]
    if middleware:
        objects.append(connection_secret(application, environment, middleware))
    objects += [
        _deployment(application, environment, image=image, config=config, release=release, middleware=middleware,
                    uses=uses),
        _service(application, environment),
    ]
    if application.exposed:
        objects.append(_ingress(application, environment, hostname=hostname, ingress_class=ingress_class))
    if application.autoscaling:
        objects.append(_horizontal_pod_autoscaler(application, environment))
    return objects


def namespace_name(application: Application, environment: Environment) -> str:
    return environment.namespace_for(application.project.slug)


def selector_labels(application: Application, environment: Environment) -> dict[str, str]:
    """The labels selecting the application's pods: never changing, since a Deployment's selector is immutable."""
    return {NAME_LABEL: application.name, INSTANCE_LABEL: f"{application.name}-{environment.name}"}


def manifests_digest(objects: list[Manifest]) -> str:
    """Tells whether anything would change in the cluster, whatever the key order of the dicts."""
    return _sha256(objects)


def _sha256(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# Input checks: reject what the API server would, before the first object is applied and not halfway through.


def _check_inputs(
    application: Application, environment: Environment, *, image: str, config: ReleaseConfig, release: str, hostname: str | None
) -> None:
    if application.exposed and not hostname:
        raise ValueError(f"application {application.name!r} is exposed, so its Ingress needs a hostname")
    if not _RFC1035_LABEL.fullmatch(application.name):
        raise ValueError(f"application name {application.name!r} cannot name a Service: it must start with a letter")
    parse_image_reference(image)
    _check_label_value(release, "release")
    _check_label_value(selector_labels(application, environment)[INSTANCE_LABEL], "instance label")
    _check_config(config)


def _check_label_value(value: str, what: str) -> None:
    if not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} is not a Kubernetes label value: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )


def _check_config(config: ReleaseConfig) -> None:
    for name, value in config.env.items():
        if not _ENV_VAR_NAME.fullmatch(name):
            raise ValueError(f"environment variable name {name!r} must be letters, digits and '_', not starting with a digit")
        _check_string(value, f"environment variable {name!r}")
    for name, content in config.files.items():
        # Kubernetes' ConfigMap key rule: "." and ".." would escape the mounted directory, "..x" is the kubelet's.
        if not _CONFIG_MAP_KEY.fullmatch(name) or name == "." or name.startswith(".."):
            raise ValueError(
                f"config file name {name!r} must be letters, digits, '-', '_' and '.' (no '/'), and not start with '..'"
            )
        _check_string(content, f"config file {name!r}")


def _check_string(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")


# Labels and metadata.


def _namespace_labels(application: Application, environment: Environment) -> dict[str, str]:
    """Labels of what all applications of a namespace share."""
    return {MANAGED_BY_LABEL: MANAGED_BY, PROJECT_LABEL: application.project.slug, ENVIRONMENT_LABEL: environment.name}


def _app_labels(application: Application, environment: Environment) -> dict[str, str]:
    return selector_labels(application, environment) | _namespace_labels(application, environment)


def _release_labels(application: Application, environment: Environment, release: str) -> dict[str, str]:
    return _app_labels(application, environment) | {RELEASE_LABEL: release}


def _metadata(name: str, application: Application, environment: Environment, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": namespace_name(application, environment), "labels": labels}


def _config_map_name(application: Application) -> str:
    return f"{application.name}-config"


def _config_path(application: Application, middleware: MiddlewareTemplate | None) -> str:
    if middleware and middleware.config_path:
        return middleware.config_path
    return application.base_image.config_path if application.base_image else DEFAULT_CONFIG_PATH


# One function per object kind, in apply order.


def _namespace(application: Application, environment: Environment) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace_name(application, environment), "labels": _namespace_labels(application, environment)},
    }


def _resource_quota(application: Application, environment: Environment) -> Manifest:
    """Caps the whole project in this environment, so one runaway release cannot starve the cluster."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _metadata(QUOTA_NAME, application, environment, _namespace_labels(application, environment)),
        "spec": {"hard": dict(QUOTA_HARD)},
    }


def _default_deny_ingress_policy(application: Application, environment: Environment) -> Manifest:
    """Denies all ingress in the namespace; each application's own policy opens what it allows.

    Identical for every application of the namespace, so applying it once per application is idempotent.
    """
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(DEFAULT_DENY_POLICY_NAME, application, environment, _namespace_labels(application, environment)),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def _allow_ingress_policy(application: Application, environment: Environment, allowed_callers: Sequence[str]) -> Manifest:
    """Admits the allowed callers (and the ingress controller if exposed) to this application, and nothing else.

    A rule without peers would admit everyone, so none is written when nobody is allowed.
    """
    peers: list[dict[str, Any]] = []
    if allowed_callers:
        peers.append(_pods_named(allowed_callers))
    if application.exposed:
        peers.append({"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: INGRESS_CONTROLLER_NAMESPACE}}})
    return _ingress_policy(f"{application.name}-allow-ingress", application, environment, target=application, peers=peers)


def _caller_policy(application: Application, environment: Environment, instance: Application) -> Manifest:
    """Lets the application reach a middleware instance it uses.

    Part of the caller's objects, not the instance's: NetworkPolicies add up, so
    access starts and ends with the caller's own release (and its rollback).
    """
    return _ingress_policy(f"{application.name}-to-{instance.name}", application, environment, target=instance,
                           peers=[_pods_named([application.name])])


def _pods_named(names: Sequence[str]) -> dict[str, Any]:
    return {"podSelector": {"matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": sorted(set(names))}]}}


def _ingress_policy(
    name: str, application: Application, environment: Environment, *, target: Application, peers: list[dict[str, Any]]
) -> Manifest:
    """A NetworkPolicy of ``application`` admitting ``peers`` to the pods of ``target`` on its port."""
    rules = [{"from": peers, "ports": [{"protocol": "TCP", "port": target.port}]}] if peers else []
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(name, application, environment, _app_labels(application, environment)),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(target, environment)},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


def connection_secret(application: Application, environment: Environment, middleware: MiddlewareTemplate) -> Manifest:
    """The Secret of a middleware instance's connection settings, redacted: revisions are shown to people."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(
            connection_secret_name(application.name), application, environment, _app_labels(application, environment)
        ),
        "type": "Opaque",
        "data": {key: REDACTED for key in middleware.connection_keys},
    }


def secret_filled(secret: Manifest, values: Mapping[str, str]) -> Manifest:
    """A redacted Secret with its real values, for the API server only: never store what this returns."""
    return {**secret, "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}}


def _config_map(application: Application, environment: Environment, config: ReleaseConfig) -> Manifest:
    """Always rendered, even empty, so the pod's volume always has something to mount."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(_config_map_name(application), application, environment, _app_labels(application, environment)),
        "data": dict(config.files),
    }


def _deployment(
    application: Application, environment: Environment, *, image: str, config: ReleaseConfig, release: str,
    middleware: MiddlewareTemplate | None, uses: Sequence[Application],
) -> Manifest:
    """Replicas are left to the HPA when autoscaling; the config hash on the pods rolls them when only config changed."""
    replicas = {} if application.autoscaling else {"replicas": application.replicas}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(application.name, application, environment, _release_labels(application, environment, release)),
        "spec": replicas
        | {
            "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
            "progressDeadlineSeconds": environment.rollout_deadline_seconds,
            "selector": {"matchLabels": selector_labels(application, environment)},
            # Never below the desired count: a bad release stalls on unready new pods while the old ones keep serving.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": _release_labels(application, environment, release),
                    "annotations": {CONFIG_HASH_ANNOTATION: config.hash()},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [
                        _container(application, image=image, config=config, middleware=middleware, uses=uses)
                    ],
                    "volumes": [{"name": CONFIG_VOLUME, "configMap": {"name": _config_map_name(application)}}],
                },
            },
        },
    }


def _container(
    application: Application, *, image: str, config: ReleaseConfig, middleware: MiddlewareTemplate | None,
    uses: Sequence[Application],
) -> dict[str, Any]:
    """The one container. Privilege escalation is refused; root and default capabilities stay: middleware images need them.

    A middleware instance reads its secrets from its own connection Secret; an
    application using instances gets their connection settings as environment.
    """
    env = [{"name": name, "value": value} for name, value in sorted(config.env.items())]
    extra: dict[str, Any] = {}
    if middleware:
        secret = connection_secret_name(application.name)
        env += [{"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
                for name, key in sorted(middleware.secret_env.items())]
        if middleware.args:
            extra["args"] = list(middleware.args)
    if uses:
        extra["envFrom"] = [{"secretRef": {"name": connection_secret_name(instance.name)}} for instance in uses]
    return {
        "name": application.name,
        "image": image,
        **extra,
        "ports": [{"name": PORT_NAME, "containerPort": application.port, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": application.cpu_request, "memory": application.memory_request},
            "limits": {"cpu": application.cpu_limit, "memory": application.memory_limit},
        },
        "readinessProbe": _probe(application, initial_delay_seconds=READINESS_INITIAL_DELAY_SECONDS),
        "livenessProbe": _probe(application, initial_delay_seconds=LIVENESS_INITIAL_DELAY_SECONDS),
        "volumeMounts": [
            {"name": CONFIG_VOLUME, "mountPath": _config_path(application, middleware), "readOnly": True}
        ],
        "securityContext": {"allowPrivilegeEscalation": False},
    }


def _probe(application: Application, *, initial_delay_seconds: int) -> dict[str, Any]:
    """HTTP on the health path; a plain TCP connect for servers that speak no HTTP (Redis, ZooKeeper)."""
    check = (
        {"httpGet": {"path": application.health_path, "port": PORT_NAME}}
        if application.health_path
        else {"tcpSocket": {"port": PORT_NAME}}
    )
    return {
        **check,
        "initialDelaySeconds": initial_delay_seconds,
        "periodSeconds": 10,
    }


def _service(application: Application, environment: Environment) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(application.name, application, environment, _app_labels(application, environment)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(application, environment),
            "ports": [{"name": PORT_NAME, "port": application.port, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def _ingress(application: Application, environment: Environment, *, hostname: str | None, ingress_class: str) -> Manifest:
    backend = {"service": {"name": application.name, "port": {"number": application.port}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(application.name, application, environment, _app_labels(application, environment)),
        "spec": {
            "ingressClassName": ingress_class,
            "rules": [{"host": hostname, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}],
        },
    }


def _horizontal_pod_autoscaler(application: Application, environment: Environment) -> Manifest:
    cpu_target = {"type": "Utilization", "averageUtilization": application.autoscaling_target_cpu}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(application.name, application, environment, _app_labels(application, environment)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": application.name},
            "minReplicas": application.autoscaling_min,
            "maxReplicas": application.autoscaling_max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": cpu_target}}],
        },
    }
