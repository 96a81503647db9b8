"""Slipway's own manifests (deploy/), rendered by Debian's kubectl (its built-in kustomize), once per session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("demo", "production")


def kustomize(directory: Path) -> list[dict]:
    """`kubectl kustomize DIRECTORY`, parsed: the objects an operator's `kubectl apply -k` would send."""
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not installed (.ci/test installs Debian's kubectl when missing)")
    done = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return [obj for obj in yaml.safe_load_all(done.stdout) if obj]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """Each overlay's objects, by overlay name."""
    return {overlay: kustomize(REPO / "deploy" / "overlays" / overlay) for overlay in OVERLAYS}


def find(objects: list[dict], kind: str, name: str) -> dict:
    matches = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def workloads(objects: list[dict]) -> list[dict]:
    return [obj for obj in objects if obj["kind"] in ("Deployment", "Job")]


def config_data(objects: list[dict]) -> dict[str, str]:
    """The data of the generated slipway-config ConfigMap (its name carries kustomize's hash)."""
    [config] = [obj for obj in objects if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].startswith("slipway-config-")]
    return config["data"]


@pytest.fixture
def database_url(db) -> str:
    """`DATABASE_URL` of the (migrated) test database, for Slipway processes the tests start."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("these tests start Slipway's processes on PostgreSQL; run them with DATABASE_URL=postgres://…")
    d = connection.settings_dict
    return f"postgres://{d['USER']}:{d['PASSWORD'] or ''}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"
