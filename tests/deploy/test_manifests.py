"""deploy/: every overlay renders, every object passes the official schemas, and each keeps the rules operators rely on."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest

from tests.deploy.conftest import OVERLAYS, REPO, config_data, find, workloads

# What the sandbox cluster reports itself as (deployments/sandbox/app.py VERSION_INFO) and CI applies to.
KUBERNETES_VERSION = "1.31"
SLIPWAY_WORKLOADS = {"slipway-web", "slipway-worker", "slipway-beat", "slipway-migrate"}
# Settings that hold secrets: never in a ConfigMap or a manifest, only in the Secret the operator creates.
SECRET_SETTINGS = re.compile(r"SECRET|_KEYS$|PASSWORD|TOKEN")
# Read by gunicorn itself (its worker count), not by Slipway's settings.
GUNICORN_SETTINGS = {"WEB_CONCURRENCY"}
# Interfaces of issue #17's other parts that the manifests already set (metrics: the worker's metrics port);
# remove a name once the settings read it (this test then checks it like any other).
PENDING_SETTINGS = {"SLIPWAY_WORKER_METRICS_PORT"}


def settings_env_names() -> set[str]:
    """Every environment variable paas_site/settings.py reads (dj-database-url reads DATABASE_URL)."""
    source = (REPO / "paas_site" / "settings.py").read_text()
    names = set(re.findall(r'(?:os\.environ\.get|env_bool|env_list)\(\s*"([A-Z][A-Z0-9_]*)"', source))
    return names | {"DATABASE_URL"}


def containers(workload: dict) -> list[dict]:
    spec = workload["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_passes_the_strict_official_schema(rendered, overlay):
    objects = rendered[overlay]

    assert objects, f"{overlay} rendered nothing"
    for obj in objects:
        # strict: an unknown or misplaced field fails, as a real API server would drop or reject it
        assert kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_runs_every_process_in_its_own_namespace(rendered, overlay):
    objects = rendered[overlay]
    [namespace] = [obj["metadata"]["name"] for obj in objects if obj["kind"] == "Namespace"]

    assert {obj["metadata"]["name"] for obj in workloads(objects)} >= SLIPWAY_WORKLOADS
    assert {obj["metadata"].get("namespace") for obj in objects if obj["kind"] != "Namespace"} == {namespace}
    assert objects[0]["kind"] == "Namespace"  # applied first, so everything else has somewhere to go
    assert objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_value_is_in_the_manifests(rendered, overlay):
    objects = rendered[overlay]

    assert [obj for obj in objects if obj["kind"] == "Secret"] == []
    assert [name for name in config_data(objects) if SECRET_SETTINGS.search(name)] == []
    for workload in workloads(objects):
        for container in containers(workload):
            assert [e["name"] for e in container.get("env", []) if SECRET_SETTINGS.search(e["name"])] == []
    for workload in find_slipway(objects):
        for container in containers(workload):
            assert {"secretRef": {"name": "slipway-secrets"}} in container["envFrom"], workload["metadata"]["name"]


def find_slipway(objects: list[dict]) -> list[dict]:
    """Slipway's own Deployments and Job (not the demo's PostgreSQL and Redis)."""
    return [obj for obj in workloads(objects) if obj["metadata"]["name"] in SLIPWAY_WORKLOADS]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_unprivileged_on_a_read_only_root(rendered, overlay):
    for workload in workloads(rendered[overlay]):
        name, pod = workload["metadata"]["name"], workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["capabilities"] == {"drop": ["ALL"]}, (name, container["name"])
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), (name, container["name"])
            assert "memory" in container["resources"]["limits"], (name, container["name"])


# Where each process writes (the root filesystem is read-only): the setting naming the place, and who writes there.
WRITERS = {"SLIPWAY_VAR_DIR": SLIPWAY_WORKLOADS, "SLIPWAY_MEDIA_ROOT": {"slipway-web", "slipway-worker"},
           "SLIPWAY_AUDIT_CHECKPOINT_DIR": {"slipway-worker"}}


def volume_at(workload: dict, path: str) -> dict:
    """The writable volume the workload's main container has mounted at or above `path`."""
    pod = workload["spec"]["template"]["spec"]
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if f"{path}/".startswith(m["mountPath"] + "/")]
    assert not mount.get("readOnly"), (workload["metadata"]["name"], path)
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return volume


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_place_slipway_writes_is_a_volume_of_the_pods_that_write_it(rendered, overlay):
    objects = rendered[overlay]
    config = config_data(objects)
    by_name = {workload["metadata"]["name"]: workload for workload in find_slipway(objects)}
    claims = {setting: {volume_at(by_name[name], config[setting]).get("persistentVolumeClaim", {}).get("claimName")
                        for name in writers} for setting, writers in WRITERS.items()}

    assert all("emptyDir" in volume_at(by_name[name], config["SLIPWAY_VAR_DIR"]) for name in SLIPWAY_WORKLOADS)
    assert claims["SLIPWAY_MEDIA_ROOT"] == {"slipway-media"}  # web's uploads are on the volume the workers build from
    assert claims["SLIPWAY_AUDIT_CHECKPOINT_DIR"] == {"slipway-audit-checkpoints"}  # kept when pods go


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_probes_ask_healthz_and_readyz_as_an_allowed_host(rendered, overlay):
    objects = rendered[overlay]
    [web] = find(objects, "Deployment", "slipway-web")["spec"]["template"]["spec"]["containers"]
    allowed_hosts = config_data(objects)["ALLOWED_HOSTS"].split(",")

    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = web[probe]["httpGet"]
        headers = {header["name"]: header["value"] for header in get["httpHeaders"]}
        assert get["path"] == path
        assert headers["Host"] in allowed_hosts  # else Django answers the kubelet 400 (DisallowedHost)
        assert headers["X-Forwarded-Proto"] == "https"  # else SECURE_SSL_REDIRECT answers 301


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_autoscales_and_workers_and_web_keep_a_disruption_budget(rendered, overlay):
    objects = rendered[overlay]
    hpa = find(objects, "HorizontalPodAutoscaler", "slipway-web")
    labels = {name: find(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
              for name in ("slipway-web", "slipway-worker")}

    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "slipway-web"}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    for name, pod_labels in labels.items():
        budget = find(objects, "PodDisruptionBudget", name)
        assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert budget["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_exactly_one_beat_that_takes_the_database_lock(rendered, overlay):
    objects = rendered[overlay]
    beat = find(objects, "Deployment", "slipway-beat")
    [container] = beat["spec"]["template"]["spec"]["containers"]

    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}  # the old beat is gone before the new one starts
    assert container["command"][:3] == ["celery", "--app=paas_site", "beat"]  # the app whose beat_init takes the lock
    assert [hpa for hpa in objects if hpa["kind"] == "HorizontalPodAutoscaler"
            and hpa["spec"]["scaleTargetRef"]["name"] == "slipway-beat"] == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_shut_down_gracefully_and_prove_they_are_alive(rendered, overlay):
    worker = find(rendered[overlay], "Deployment", "slipway-worker")
    pod = worker["spec"]["template"]["spec"]
    [container] = pod["containers"]

    # Celery's warm shutdown finishes the running step; with acks_late anything cut off is redelivered.
    assert pod["terminationGracePeriodSeconds"] >= 300
    assert container["livenessProbe"]["exec"]["command"] == ["python", "manage.py", "worker_alive"]
    assert "--hostname=worker@%h" in container["command"]  # unique Celery node names across pods


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_in_a_job_and_new_web_pods_wait_for_them(rendered, overlay):
    objects = rendered[overlay]
    job = find(objects, "Job", "slipway-migrate")
    web = find(objects, "Deployment", "slipway-web")["spec"]["template"]["spec"]
    [wait] = web["initContainers"]
    images = {container["image"] for workload in find_slipway(objects) for container in containers(workload)}

    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert "python manage.py migrate --check" in wait["command"][-1]
    assert len(images) == 1  # the Job migrates for exactly the code the pods run


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_only_from_the_ingress_controller_and_monitoring(rendered, overlay):
    objects = rendered[overlay]
    policies = [obj for obj in objects if obj["kind"] == "NetworkPolicy"]
    deny = find(objects, "NetworkPolicy", "slipway-deny-ingress")
    web = find(objects, "NetworkPolicy", "slipway-web-ingress")

    assert deny["spec"] == {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "slipway"}}, "policyTypes": ["Ingress"]}
    assert web["spec"]["ingress"][0]["ports"] == [{"port": "http"}]
    peers = web["spec"]["ingress"][0]["from"]
    sources = {peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in peers}
    assert sources == {"ingress-nginx", "monitoring"}
    assert all(policy["spec"]["policyTypes"] == ["Ingress"] for policy in policies)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_the_manifests_set_is_one_slipway_reads(rendered, overlay):
    objects = rendered[overlay]
    known = settings_env_names() | GUNICORN_SETTINGS | PENDING_SETTINGS
    set_here = set(config_data(objects))
    for workload in find_slipway(objects):
        set_here |= {e["name"] for container in containers(workload) for e in container.get("env", [])}

    assert set_here - known == set()  # a misspelt name would be silently ignored by the pods


def test_the_readme_production_table_lists_every_setting():
    readme = (REPO / "README.md").read_text()
    production = readme.split("\n## Production\n", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in production.splitlines() if line.startswith("| `"))

    assert settings_env_names() - set(re.findall(r"`([A-Z][A-Z0-9_]*)`", table)) == set()
