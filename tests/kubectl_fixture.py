"""The `kubectl` fixture: Debian's kubectl, a client nobody here wrote, driven against a sandbox cluster of its own.

Each test module gets a fresh sandbox (so conformance tests never disturb the
session's), serving HTTPS under the CA it generated and requiring a bearer
token, as kubectl talks to a real API server; each test gets a kubeconfig
naming it (CA data + token); `kubectl("get", "pods")` runs the real binary and
returns the finished process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

KUBECTL_TOKEN = "kubectl-conformance-token"


@dataclass
class Kubectl:
    """Runs `kubectl` with a kubeconfig for one sandbox; `sandbox` is that `SandboxCluster`."""

    kubeconfig: Path
    sandbox: object

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True,
                 timeout: float = 30) -> subprocess.CompletedProcess:
        done = subprocess.run(["kubectl", f"--kubeconfig={self.kubeconfig}", *args], input=stdin,
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done

    def json(self, *args: str) -> dict:
        """`kubectl <args> -o json`, parsed."""
        return json.loads(self(*args, "-o", "json").stdout)


@pytest.fixture(scope="module")
def kubectl_sandbox():
    """A sandbox cluster for one test module's kubectl conformance tests."""
    from deployments.sandbox import SandboxCluster

    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not installed (.ci/test installs Debian's kubectl when missing)")
    with SandboxCluster(host="127.0.0.1", port=0, rollout_delay=0.1, token=KUBECTL_TOKEN, tls=True) as cluster:
        yield cluster


@pytest.fixture
def kubectl(kubectl_sandbox, tmp_path) -> Kubectl:
    """kubectl pointed at the module's sandbox (HTTPS, its CA, the token), namespace `default`, reset before each test."""
    kubectl_sandbox.reset()
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubectl_sandbox.kubeconfig(namespace="default")))
    return Kubectl(kubeconfig=path, sandbox=kubectl_sandbox)
