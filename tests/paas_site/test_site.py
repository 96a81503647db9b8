import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def test_openapi_schema_generates_without_warnings(tmp_path, db):
    out = tmp_path / "schema.yaml"
    # --fail-on-warn turns any drf-spectacular warning (unresolvable type, ...) into an error
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    schema = out.read_text()
    for path in ("/api/v1/applications/", "/api/v1/clusters/{name}/", "/api/v1/auth/token/"):
        assert path in schema


def test_schema_and_docs_are_served(client, db):
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()  # assets come from the installed sidecar package


def production_env(**overrides) -> dict[str, str]:
    secrets = {"DEBUG", "SECRET_KEY", "SLIPWAY_ENCRYPTION_KEYS", "SLIPWAY_AUDIT_KEYS"}
    env = {k: v for k, v in os.environ.items() if k not in secrets}
    env.update({
        "DEBUG": "false",
        "SECRET_KEY": "x7#Kp2!vQ9zL4@mN8$wR1^tY6&uI3*oP5(aS0)dF-gH+jJ=kB_cV.nM/xZ?qW",
        "SLIPWAY_ENCRYPTION_KEYS": "3nZ0mWqKSX3S6N1FvJ7QxY1qk2m8bq3X0tC9nXc7U2Q=",
        "SLIPWAY_AUDIT_KEYS": "a2:Qm9vdHN0cmFwLWF1ZGl0LWtleS10d28tZm9yLXRlc3Rz,a1:T2xkZXItYXVkaXQta2V5LW9uZS1mb3ItdGVzdHM=",
        "ALLOWED_HOSTS": "slipway.example.com",
        **overrides,
    })
    return env


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "SLIPWAY_ENCRYPTION_KEYS", "SLIPWAY_AUDIT_KEYS"])
def test_production_refuses_to_start_without_its_secrets(missing):
    env = production_env()
    del env[missing]
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr


@pytest.mark.parametrize("value, reason", [
    ("a1", "entry 1 must be written id:secret"),
    ("a1:short-secret", "the secret of key 'a1' is shorter than 32 characters"),
    ("a1:" + "s" * 32 + ",a1:" + "t" * 32, "key id 'a1' appears twice"),
])
def test_production_refuses_a_malformed_audit_key_and_names_it_without_its_secret(value, reason):
    result = run_manage("check", env=production_env(SLIPWAY_AUDIT_KEYS=value))
    assert result.returncode != 0
    assert f"SLIPWAY_AUDIT_KEYS: {reason}" in result.stderr
    assert "short-secret" not in result.stderr and "s" * 32 not in result.stderr
