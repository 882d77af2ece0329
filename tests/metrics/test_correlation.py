"""Correlation ids: request -> response header and log line; -> Celery task headers and worker
log lines; -> the run (Execution.correlation_id, execution_started event). JSON log format."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from apps.metrics.correlation import get_correlation_id, set_correlation_id
from apps.metrics.logs import CorrelationIdFilter, JsonFormatter
from apps.metrics.models import ExecutionMetric, StepMetric
from tests.helpers import wait_for, wait_until

from .conftest import make_workflow


def test_a_request_gets_an_id_in_its_response_and_its_log_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="workflow.request"):
        response = client.get("/healthz", HTTP_X_REQUEST_ID="req-abc-123")
    assert response["X-Request-ID"] == "req-abc-123"
    line = next(r for r in caplog.records if r.name == "workflow.request")
    CorrelationIdFilter().filter(line)
    assert line.correlation_id == "req-abc-123"
    assert line.getMessage().startswith("GET /healthz 200")
    assert json.loads(JsonFormatter().format(line))["correlation_id"] == "req-abc-123"


def test_a_request_without_a_usable_id_gets_a_new_one(client):
    first = client.get("/healthz")["X-Request-ID"]
    bad = client.get("/healthz", HTTP_X_REQUEST_ID="no spaces; or <tags>")["X-Request-ID"]
    assert len(first) == 32 and len(bad) == 32 and first != bad


def test_the_json_formatter_emits_one_object_with_extras():
    token = set_correlation_id("cid-42")
    try:
        record = logging.LogRecord("workflow.engine", logging.WARNING, __file__, 1, "step %s failed", ("a",), None)
        record.execution_id = 7
        data = json.loads(JsonFormatter().format(record))
    finally:
        from apps.metrics.correlation import reset_correlation_id

        reset_correlation_id(token)
    assert data["message"] == "step a failed" and data["level"] == "WARNING" and data["logger"] == "workflow.engine"
    assert data["correlation_id"] == "cid-42" and data["execution_id"] == 7
    assert get_correlation_id() == ""


@pytest.mark.worker
def test_a_run_started_through_the_api_carries_the_request_id_to_the_worker_and_the_run(worker, api, alice):
    wf = make_workflow(alice)
    wf.definition = {
        "format_version": 1,
        "nodes": [{"id": "a", "type": "activity", "activity": "noop", "params": {}}, {"id": "b", "type": "activity", "activity": "log", "params": {"message": "hello"}}],
        "edges": [{"from": "a", "to": "b"}],
    }
    wf.save()
    cid = f"it-{uuid.uuid4().hex[:12]}"
    response = api.post(f"/api/v1/workflows/{wf.pk}/runs", {"input": {}}, format="json", HTTP_X_REQUEST_ID=cid)
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == cid
    from apps.executions.models import Execution

    execution = wait_for(Execution.objects.get(pk=response.json()["id"]))
    assert execution.status == "completed"
    assert execution.correlation_id == cid
    started = execution.events.get(type="execution_started")
    assert started.payload["correlation_id"] == cid
    # The worker's log lines for the run's tasks carry the id.
    wait_until(lambda: cid in worker.log_path.read_text(errors="replace"), timeout=10, message="the correlation id in the worker log")
    lines = [line for line in worker.log_path.read_text(errors="replace").splitlines() if cid in line]
    assert any("workflow.task" in line and "executions.run_step" in line for line in lines), lines[-5:]
    # The worker's metrics collector recorded the run and its steps soon after it finished.
    metric = wait_until(lambda: ExecutionMetric.objects.filter(execution_id=execution.pk).first(), timeout=10, message="the run's metrics")
    assert metric.status == "completed" and metric.correlation_id == cid and metric.trigger == "api"
    assert metric.duration_ms == pytest.approx(execution.duration_ms, abs=1.5)
    steps = StepMetric.objects.filter(execution_id=execution.pk).order_by("node_id")
    assert [s.node_id for s in steps] == ["a", "b"]
    assert all(s.duration_ms >= 0 for s in steps)
