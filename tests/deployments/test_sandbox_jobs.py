"""The sandbox's Jobs (deployments/sandbox/jobs.py), driven with Debian's kubectl: they complete, or fail with a broken image."""

import time

import pytest

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: "{image}", command: [python, manage.py, migrate]}}]
"""


def finished(kubectl, name: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = kubectl.json("get", "job", name).get("status", {})
        if status.get("conditions"):
            return status
        time.sleep(0.05)
    pytest.fail(f"job {name} did not finish: {status}")


def test_a_job_completes(kubectl):
    kubectl("apply", "--validate=false", "-f", "-", stdin=JOB.format(name="migrate", image="registry.example.com/app:1.0"))

    status = finished(kubectl, "migrate")

    assert status["succeeded"] == 1 and "active" not in status
    assert status["startTime"] <= status["completionTime"]
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [("SuccessCriteriaMet", "True"), ("Complete", "True")]


def test_a_job_of_a_broken_image_fails_past_its_backoff_limit(kubectl):
    kubectl("apply", "--validate=false", "-f", "-", stdin=JOB.format(name="bad", image="registry.example.com/app:1.0-broken"))

    status = finished(kubectl, "bad")

    assert status["failed"] == 3 and "succeeded" not in status
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        ("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")]
