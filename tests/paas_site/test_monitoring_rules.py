"""The shipped alert rules and dashboard: promtool checks and unit-tests the rules; the dashboard's queries
parse as PromQL and name only figures Slipway exports."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from paas_site import metrics
from workflows.metrics import StateCollector

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        pytest.fail("promtool is not installed: run the tests through .ci/test (apt-get install prometheus)")
    return path


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=MONITORING, capture_output=True, text=True, timeout=60)


def test_the_alert_rules_are_valid(promtool):
    result = run(promtool, "check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_the_alert_rules_fire_as_their_unit_tests_say(promtool):
    result = run(promtool, "test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


SUFFIXES = {"histogram": ["_bucket", "_count", "_sum"], "counter": ["_total"], "gauge": [""]}


def exported_names() -> set[str]:
    """Every sample name Slipway's expositions can carry (events, and the state collector's families)."""
    families = [metric.describe()[0] for metric in (metrics.STEP_DURATION, metrics.STEP_RETRIES, metrics.REAPER_ACTIONS,
                                                    metrics.CALL_ERRORS, metrics.WEBHOOK_DELIVERIES, metrics.LANE_WAIT)]
    families += list(StateCollector().collect())  # an empty database still yields every family (no samples)
    return {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


@pytest.mark.django_db
def test_the_dashboard_queries_parse_and_name_only_exported_figures(promtool, tmp_path):
    names = exported_names()
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) >= 12
    # Grafana's variables, as Grafana would substitute them
    concrete = [e.replace("$__rate_interval", "1m").replace("$environment", ".*") for e in exprs]
    used = {name for e in concrete for name in re.findall(r"\bslipway_[a-z_]+", e)}
    assert used <= names, f"the dashboard names figures Slipway does not export: {sorted(used - names)}"
    assert {"slipway_step_duration_seconds_bucket", "slipway_releases", "slipway_external_call_errors_total"} <= used
    # promtool parses each query (as a recording rule)
    rules = tmp_path / "dashboard-rules.yml"
    rules.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{n}", "expr": e} for n, e in enumerate(concrete)]}]}))
    result = run(promtool, "check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
