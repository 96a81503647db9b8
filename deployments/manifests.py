"""The Kubernetes objects of one application in one environment, built as data from its deploy spec.

Pure: no database, no I/O; the input is a release's frozen ``DeploySpec``, never
a live model row. Objects are plain dicts, never templated text, so a config
value can only ever become a string value, never YAML structure.
"""
import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .images import parse_image_reference
from .middleware import TEMPLATES, MiddlewareTemplate, connection_secret_name
from .models import Application, Environment
from .specs import DeploySpec, UsedInstance

Manifest = dict[str, Any]

INGRESS_CONTROLLER_NAMESPACE = "ingress-nginx"

QUOTA_NAME = "slipway-quota"
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


def render(*, spec: DeploySpec, image: str, config: ReleaseConfig, release: str) -> list[Manifest]:
    """All objects of one application in one environment, in apply order, from its frozen spec.

    ``spec.middleware`` is set when the application is a middleware instance;
    ``spec.uses`` are the middleware instances it connects to.
    """
    template = TEMPLATES[spec.middleware.template] if spec.middleware else None
    _check_inputs(spec, image=image, config=config, release=release)
    objects = [
        _namespace(spec),
        _resource_quota(spec),
        _default_deny_ingress_policy(spec),
        _allow_ingress_policy(spec),
        *(_caller_policy(spec, instance) for instance in spec.uses),
        _config_map(spec, config),
    ]
    if template:
        objects.append(connection_secret(spec, template))
    objects += [
        _deployment(spec, image=image, config=config, release=release, middleware=template),
        _service(spec),
    ]
    if spec.exposed:
        objects.append(_ingress(spec))
    if spec.autoscaling:
        objects.append(_horizontal_pod_autoscaler(spec))
    return objects


def namespace_name(application: Application, environment: Environment) -> str:
    return environment.namespace_for(application.project.slug)


def selector_labels(application: Application, environment: Environment) -> dict[str, str]:
    """The labels selecting the application's pods: never changing, since a Deployment's selector is immutable."""
    return _selector(application.name, environment.name)


def _selector(application: str, environment: str) -> dict[str, str]:
    return {NAME_LABEL: application, INSTANCE_LABEL: f"{application}-{environment}"}


def manifests_digest(objects: list[Manifest]) -> str:
    """Tells whether anything would change in the cluster, whatever the key order of the dicts."""
    return _sha256(objects)


def _sha256(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# Input checks: reject what the API server would, before the first object is applied and not halfway through.


def _check_inputs(spec: DeploySpec, *, image: str, config: ReleaseConfig, release: str) -> None:
    if spec.exposed and not spec.hostname:
        raise ValueError(f"application {spec.application!r} is exposed, so its Ingress needs a hostname")
    if not _RFC1035_LABEL.fullmatch(spec.application):
        raise ValueError(f"application name {spec.application!r} cannot name a Service: it must start with a letter")
    parse_image_reference(image)
    _check_label_value(release, "release")
    _check_label_value(_pod_selector(spec)[INSTANCE_LABEL], "instance label")
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


def _pod_selector(spec: DeploySpec) -> dict[str, str]:
    return _selector(spec.application, spec.environment)


def _namespace_labels(spec: DeploySpec) -> dict[str, str]:
    """Labels of what all applications of a namespace share."""
    return {MANAGED_BY_LABEL: MANAGED_BY, PROJECT_LABEL: spec.project, ENVIRONMENT_LABEL: spec.environment}


def _app_labels(spec: DeploySpec) -> dict[str, str]:
    return _pod_selector(spec) | _namespace_labels(spec)


def _release_labels(spec: DeploySpec, release: str) -> dict[str, str]:
    return _app_labels(spec) | {RELEASE_LABEL: release}


def _metadata(name: str, spec: DeploySpec, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": spec.namespace, "labels": labels}


def _config_map_name(spec: DeploySpec) -> str:
    return f"{spec.application}-config"


# One function per object kind, in apply order.


def _namespace(spec: DeploySpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": spec.namespace, "labels": _namespace_labels(spec)},
    }


def _resource_quota(spec: DeploySpec) -> Manifest:
    """Caps the whole project in this environment, so one runaway release cannot starve the cluster."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _metadata(QUOTA_NAME, spec, _namespace_labels(spec)),
        "spec": {"hard": dict(spec.quota)},
    }


def _default_deny_ingress_policy(spec: DeploySpec) -> Manifest:
    """Denies all ingress in the namespace; each application's own policy opens what it allows.

    Identical for every application of the namespace, so applying it once per application is idempotent.
    """
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(DEFAULT_DENY_POLICY_NAME, spec, _namespace_labels(spec)),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def _allow_ingress_policy(spec: DeploySpec) -> Manifest:
    """Admits the allowed callers (and the ingress controller if exposed) to this application, and nothing else.

    A rule without peers would admit everyone, so none is written when nobody is allowed.
    """
    peers: list[dict[str, Any]] = []
    if spec.allowed_callers:
        peers.append(_pods_named(spec.allowed_callers))
    if spec.exposed:
        peers.append({"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: INGRESS_CONTROLLER_NAMESPACE}}})
    target = UsedInstance(name=spec.application, port=spec.port)
    return _ingress_policy(f"{spec.application}-allow-ingress", spec, target=target, peers=peers)


def _caller_policy(spec: DeploySpec, instance: UsedInstance) -> Manifest:
    """Lets the application reach a middleware instance it uses.

    Part of the caller's objects, not the instance's: NetworkPolicies add up, so
    access starts and ends with the caller's own release (and its rollback).
    """
    return _ingress_policy(f"{spec.application}-to-{instance.name}", spec, target=instance,
                           peers=[_pods_named([spec.application])])


def _pods_named(names: Sequence[str]) -> dict[str, Any]:
    return {"podSelector": {"matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": sorted(set(names))}]}}


def _ingress_policy(name: str, spec: DeploySpec, *, target: UsedInstance, peers: list[dict[str, Any]]) -> Manifest:
    """A NetworkPolicy of the application admitting ``peers`` to the pods of ``target`` on its port."""
    rules = [{"from": peers, "ports": [{"protocol": "TCP", "port": target.port}]}] if peers else []
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(name, spec, _app_labels(spec)),
        "spec": {
            "podSelector": {"matchLabels": _selector(target.name, spec.environment)},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }


def connection_secret(spec: DeploySpec, middleware: MiddlewareTemplate) -> Manifest:
    """The Secret of a middleware instance's connection settings, redacted: revisions are shown to people."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(connection_secret_name(spec.application), spec, _app_labels(spec)),
        "type": "Opaque",
        "data": {key: REDACTED for key in middleware.connection_keys},
    }


def secret_filled(secret: Manifest, values: Mapping[str, str]) -> Manifest:
    """A redacted Secret with its real values, for the API server only: never store what this returns."""
    return {**secret, "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}}


def _config_map(spec: DeploySpec, config: ReleaseConfig) -> Manifest:
    """Always rendered, even empty, so the pod's volume always has something to mount."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(_config_map_name(spec), spec, _app_labels(spec)),
        "data": dict(config.files),
    }


def _deployment(
    spec: DeploySpec, *, image: str, config: ReleaseConfig, release: str, middleware: MiddlewareTemplate | None,
) -> Manifest:
    """Replicas are left to the HPA when autoscaling; the config hash on the pods rolls them when only config changed."""
    replicas = {} if spec.autoscaling else {"replicas": spec.replicas}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec.application, spec, _release_labels(spec, release)),
        "spec": replicas
        | {
            "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
            "progressDeadlineSeconds": spec.rollout_deadline_seconds,
            "selector": {"matchLabels": _pod_selector(spec)},
            # Never below the desired count: a bad release stalls on unready new pods while the old ones keep serving.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": _release_labels(spec, release),
                    "annotations": {CONFIG_HASH_ANNOTATION: config.hash()},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [_container(spec, image=image, config=config, middleware=middleware)],
                    "volumes": [{"name": CONFIG_VOLUME, "configMap": {"name": _config_map_name(spec)}}],
                },
            },
        },
    }


def _container(
    spec: DeploySpec, *, image: str, config: ReleaseConfig, middleware: MiddlewareTemplate | None,
) -> dict[str, Any]:
    """The one container. Privilege escalation is refused; root and default capabilities stay: middleware images need them.

    A middleware instance reads its secrets from its own connection Secret; an
    application using instances gets their connection settings as environment.
    """
    env = [{"name": name, "value": value} for name, value in sorted(config.env.items())]
    extra: dict[str, Any] = {}
    if middleware:
        secret = connection_secret_name(spec.application)
        env += [{"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
                for name, key in sorted(middleware.secret_env.items())]
        if middleware.args:
            extra["args"] = list(middleware.args)
    if spec.uses:
        extra["envFrom"] = [{"secretRef": {"name": connection_secret_name(used.name)}} for used in spec.uses]
    return {
        "name": spec.application,
        "image": image,
        **extra,
        "ports": [{"name": PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": spec.cpu_request, "memory": spec.memory_request},
            "limits": {"cpu": spec.cpu_limit, "memory": spec.memory_limit},
        },
        "readinessProbe": _probe(spec, initial_delay_seconds=READINESS_INITIAL_DELAY_SECONDS),
        "livenessProbe": _probe(spec, initial_delay_seconds=LIVENESS_INITIAL_DELAY_SECONDS),
        "volumeMounts": [{"name": CONFIG_VOLUME, "mountPath": spec.config_path, "readOnly": True}],
        "securityContext": {"allowPrivilegeEscalation": False},
    }


def _probe(spec: DeploySpec, *, initial_delay_seconds: int) -> dict[str, Any]:
    """HTTP on the health path; a plain TCP connect for servers that speak no HTTP (Redis, ZooKeeper)."""
    check = (
        {"httpGet": {"path": spec.health_path, "port": PORT_NAME}}
        if spec.health_path
        else {"tcpSocket": {"port": PORT_NAME}}
    )
    return {
        **check,
        "initialDelaySeconds": initial_delay_seconds,
        "periodSeconds": 10,
    }


def _service(spec: DeploySpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec.application, spec, _app_labels(spec)),
        "spec": {
            "type": "ClusterIP",
            "selector": _pod_selector(spec),
            "ports": [{"name": PORT_NAME, "port": spec.port, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def _ingress(spec: DeploySpec) -> Manifest:
    backend = {"service": {"name": spec.application, "port": {"number": spec.port}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(spec.application, spec, _app_labels(spec)),
        "spec": {
            "ingressClassName": spec.ingress_class,
            "rules": [{"host": spec.hostname,
                       "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}],
        },
    }


def _horizontal_pod_autoscaler(spec: DeploySpec) -> Manifest:
    cpu_target = {"type": "Utilization", "averageUtilization": spec.autoscaling_target_cpu}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(spec.application, spec, _app_labels(spec)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.application},
            "minReplicas": spec.autoscaling_min,
            "maxReplicas": spec.autoscaling_max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": cpu_target}}],
        },
    }
