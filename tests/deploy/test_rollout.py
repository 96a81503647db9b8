"""The production overlay applied to the sandbox cluster with Debian's kubectl, as README "Production" tells an operator.

The sandbox runs nothing (no image is pulled), so this proves what an API server and the controllers see: every
object is accepted and served, each Deployment rolls out, the migrate Job completes, and an upgrade rolls again.
"""

from __future__ import annotations

import shutil
import time

import yaml

from tests.deploy.conftest import REPO, kustomize

NAMESPACE = "slipway"
# kubectl's client-side schema check needs /openapi/v2, which the sandbox does not serve; every object passed the
# strict official schema in test_manifests instead.
APPLY = ("apply", "--validate=false")


def install(kubectl, overlay) -> None:
    """The README's install steps: the namespace, the operator's Secret, then the overlay."""
    kubectl(*APPLY, "-f", str(overlay / "namespace.yaml"))
    kubectl("-n", NAMESPACE, "create", "secret", "generic", "slipway-secrets",
            "--from-literal=SECRET_KEY=not-a-real-key", "--from-literal=DATABASE_URL=postgres://slipway@db/slipway")
    kubectl(*APPLY, "-k", str(overlay))


def wait_for_job(kubectl, name: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = kubectl.json("-n", NAMESPACE, "get", "job", name).get("status", {})
        if status.get("conditions") or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def roll_out(kubectl, objects: list[dict]) -> None:
    for deployment in (obj for obj in objects if obj["kind"] == "Deployment"):
        name = deployment["metadata"]["name"]
        done = kubectl("-n", NAMESPACE, "rollout", "status", f"deployment/{name}", "--timeout=60s", timeout=90)
        assert "successfully rolled out" in done.stdout, done.stdout


def test_production_overlay_applies_and_every_deployment_rolls_out(kubectl):
    overlay = REPO / "deploy" / "overlays" / "production"
    objects = kustomize(overlay)

    # when
    install(kubectl, overlay)

    # then every object is served (kubectl fails on a kind or object the server does not have), as rendered
    for obj in objects:
        group = obj["apiVersion"].rpartition("/")[0]
        scope = [] if obj["kind"] == "Namespace" else ["-n", NAMESPACE]
        served = kubectl.json(*scope, "get", f"{obj['kind'].lower()}.{group}".rstrip("."), obj["metadata"]["name"])
        assert obj["metadata"]["labels"].items() <= served["metadata"]["labels"].items()
        if obj["kind"] == "Deployment":
            assert served["spec"]["template"]["spec"]["containers"] == obj["spec"]["template"]["spec"]["containers"]
    roll_out(kubectl, objects)
    assert wait_for_job(kubectl, "slipway-migrate")["succeeded"] == 1
    web = kubectl.json("-n", NAMESPACE, "get", "deployment", "slipway-web")
    assert web["status"]["readyReplicas"] == 3


def test_an_upgrade_reruns_the_migrations_and_rolls_every_deployment(kubectl, tmp_path):
    # given a running installation
    overlay = tmp_path / "deploy" / "overlays" / "production"
    shutil.copytree(REPO / "deploy", tmp_path / "deploy")
    install(kubectl, overlay)
    roll_out(kubectl, kustomize(overlay))
    assert wait_for_job(kubectl, "slipway-migrate")["succeeded"] == 1

    # when the operator sets the new tag and follows README "Upgrading"
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    kustomization["images"][0]["newTag"] = "1.1.0"
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    kubectl("-n", NAMESPACE, "delete", "job", "slipway-migrate", "--ignore-not-found")
    kubectl(*APPLY, "-k", str(overlay))

    # then the Job ran again for the new image and every process runs it
    job = kubectl.json("-n", NAMESPACE, "get", "job", "slipway-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.1.0")
    assert wait_for_job(kubectl, "slipway-migrate")["succeeded"] == 1
    roll_out(kubectl, kustomize(overlay))
    for name in ("slipway-web", "slipway-worker", "slipway-beat"):
        deployment = kubectl.json("-n", NAMESPACE, "get", "deployment", name)
        assert {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]} == {
            "registry.example.com/platform/slipway:1.1.0"}
        assert deployment["status"]["updatedReplicas"] == deployment["spec"]["replicas"]
