"""GET /metrics: the Prometheus exposition, behind a bearer token or an IP allow-list."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from apps.metrics import collect, prometheus
from apps.metrics.prometheus import redis_key


@pytest.fixture
def clean_counters(db):
    client = prometheus._redis()
    keys = [redis_key(n) for n in ("http", "runs_finished", "step_buckets", "step_count", "step_sum_ms")]
    client.delete(*keys)
    yield
    client.delete(*keys)


def test_it_is_forbidden_without_a_token(client: Client, settings):
    settings.WB_METRICS_TOKEN = "s3cret-token"
    settings.WB_METRICS_ALLOWED_IPS = []
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_it_is_forbidden_when_nothing_is_configured(client: Client, settings):
    settings.WB_METRICS_TOKEN = ""
    settings.WB_METRICS_ALLOWED_IPS = []
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_an_allowed_address_may_scrape(client: Client, settings, clean_counters):
    settings.WB_METRICS_TOKEN = ""
    settings.WB_METRICS_ALLOWED_IPS = ["10.0.0.0/8", "127.0.0.1"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.1").status_code == 403


def test_the_exposition_reports_requests_runs_steps_queue_and_workers(client: Client, settings, clean_counters, monkeypatch):
    settings.WB_METRICS_TOKEN = "s3cret-token"
    monkeypatch.setattr(prometheus, "worker_count", lambda: 3)
    client.get("/healthz")
    client.get("/no-such-page")
    prometheus.add_run_counts({"completed": 2, "failed": 1}, [("http.request", 8, 2, 300.0), ("http.request", 10, 1, 1500.0)])
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert 'wb_http_requests_total{method="GET",status="200"}' in text
    assert 'wb_http_requests_total{method="GET",status="404"} 1' in text
    assert 'wb_executions_finished_total{status="completed"} 2' in text
    assert 'wb_executions_finished_total{status="failed"} 1' in text
    assert "# TYPE wb_step_duration_seconds histogram" in text
    # width_bucket 8 is [100, 200) ms, 10 is [500, 1000) ms: cumulative counts per upper bound
    assert 'wb_step_duration_seconds_bucket{activity="http.request",le="0.1"} 0' in text
    assert 'wb_step_duration_seconds_bucket{activity="http.request",le="0.2"} 2' in text
    assert 'wb_step_duration_seconds_bucket{activity="http.request",le="1"} 3' in text
    assert 'wb_step_duration_seconds_bucket{activity="http.request",le="+Inf"} 3' in text
    assert 'wb_step_duration_seconds_sum{activity="http.request"} 1.8' in text
    assert re.search(r'^wb_queue_depth\{queue="[^"]+"\} \d+(\.0)?$', text, re.M)
    assert re.search(r'^wb_executions_active\{status="running"\} \d+(\.0)?$', text, re.M)
    assert re.search(r"^wb_executions_started_total \d+(\.0)?$", text, re.M)
    assert re.search(r"^wb_executions_stuck \d+(\.0)?$", text, re.M)
    assert "wb_workers 3" in text
    # every sample line parses as name{labels} value
    for line in text.strip().splitlines():
        assert line.startswith("#") or re.match(r'^[a-z_]+(\{[^}]*\})? [0-9.e+-]+$|^[a-z_]+(\{[^}]*\})? \+Inf$', line), line
    # and Prometheus' own parser reads every family, with the types the docs promise
    types = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert types["wb_http_requests"] == "counter" and types["wb_step_duration_seconds"] == "histogram"
    assert types["wb_executions_active"] == "gauge" and types["wb_queue_depth"] == "gauge"


def test_the_collector_feeds_the_counters(alice, clean_counters, settings):
    """record_executions (the engine hook's work) adds finished runs and step durations."""
    from apps.executions.engine.orchestrator import start_execution
    from .conftest import make_workflow

    wf = make_workflow(alice)
    execution = start_execution(wf, {})  # no worker: finish it by hand as cancelled
    from apps.executions.engine.orchestrator import cancel_execution

    cancel_execution(execution)
    assert collect.record_executions([execution.pk]) in (0, 1)
    counts = prometheus._decode(prometheus._redis().hgetall(redis_key("runs_finished")))
    assert counts.get("cancelled") == "1"
