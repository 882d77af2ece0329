"""deploy/monitoring/: the Prometheus alert rules and the Grafana dashboard are well-formed, promtool
accepts the rules (and their unit tests pass) where it is installed, and every metric they name is one
/metrics really serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from apps.metrics import prometheus
from apps.metrics.prometheus import redis_key
from tests.conftest import ROOT

MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "alerts.yml"
RULE_TESTS = MONITORING / "alerts.test.yml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
METRIC = re.compile(r"\bwb_[a-z0-9_]+\b")
PROMTOOL = shutil.which("promtool")


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def test_every_alert_has_an_expression_a_severity_and_a_summary():
    rules = _rules()
    assert len(rules) >= 8
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["expr"].strip() and rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
    covered = " ".join(rule["expr"] for rule in rules)
    # What an operator is paged for: failing runs, stuck runs, the queue, the pool, the workers.
    for metric in ("wb_executions_finished_total", "wb_executions_stuck", "wb_queue_depth", "wb_db_pool_waiting", "wb_workers"):
        assert metric in covered


def test_the_dashboard_is_a_grafana_dashboard_with_a_query_in_every_panel():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"] and all(target["expr"].strip() for target in panel["targets"]), panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    check = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([PROMTOOL, "test", "rules", RULE_TESTS.name], cwd=MONITORING, capture_output=True, text=True, timeout=60)
    assert unit.returncode == 0, unit.stdout + unit.stderr


@pytest.fixture
def counters_with_data(db):
    """Finished runs, step durations and requests in the metrics store, so every family has samples."""
    client = prometheus._redis()
    keys = [redis_key(n) for n in ("http", "runs_finished", "step_buckets", "step_count", "step_sum_ms")]
    client.delete(*keys)
    prometheus.add_run_counts({"completed": 1, "failed": 1}, [("noop", 3, 1, 2.0)])
    yield
    client.delete(*keys)


def test_every_metric_the_rules_and_the_dashboard_name_is_served(client: Client, settings, counters_with_data, monkeypatch):
    settings.WB_METRICS_TOKEN = "monitoring-test-token"
    monkeypatch.setattr(prometheus, "worker_count", lambda: 1)
    client.get("/healthz")
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer monitoring-test-token").content.decode()
    served = {sample.name for family in text_string_to_metric_families(body) for sample in family.samples}
    referenced = {name for expr in [*(rule["expr"] for rule in _rules()), *_dashboard_exprs()] for name in METRIC.findall(expr)}
    assert referenced, "no wb_* metric found in the rules or the dashboard"
    assert referenced <= served, f"named but not served: {sorted(referenced - served)}"
