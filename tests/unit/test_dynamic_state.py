"""/state of a dynamic node whose run ended mid-flight, and retry-failed on a run still going."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from apps.executions.models import Execution, StepRun
from apps.executions.orchestration import dynamic_state
from apps.workflows.services import create_workflow

DEFINITION = {"format_version": 1, "nodes": [{"id": "fan", "type": "dynamic", "items": [{"id": "a"}, {"id": "b"}, {"id": "c"}],
                                               "activity": "delay", "params": {"seconds": 3}}]}


def _step(status: str) -> StepRun:
    start = timezone.now() - timedelta(seconds=2)
    return StepRun(node_id="fan", scope="", node_type="dynamic", status=status, started_at=start,
                   finished_at=(start + timedelta(seconds=1)) if status != "running" else None,
                   state={"ids": ["a", "b", "c"], "status": {"a": "running", "b": "running", "c": "queued"},
                          "deps": {}, "durations": {}, "in_flight": ["a", "b"], "max_concurrent": 2, "peak": 2,
                          "started": {"a": start.isoformat(), "b": start.isoformat()}})


def test_a_cancelled_dynamic_node_shows_its_unfinished_items_as_cancelled():
    # The run was cancelled with a and b in flight: /state said "running 2 of 2" for ever.
    state = dynamic_state(_step("cancelled"))
    assert state["counts"]["running"] == 0 and state["counts"]["queued"] == 0
    assert state["by_status"]["cancelled"] == ["a", "b", "c"]
    assert state["concurrency"]["current"] == 0 and state["eta"] is None


def test_a_running_dynamic_node_is_shown_as_it_is():
    state = dynamic_state(_step("running"))
    assert state["by_status"]["running"] == ["a", "b"] and state["concurrency"]["current"] == 2


def test_retry_failed_on_a_running_run_says_it_is_still_running(db, alice, api):
    wf = create_workflow(owner=alice, name=f"fan {uuid.uuid4().hex[:6]}", definition=DEFINITION)
    run = Execution.objects.create(workflow=wf, definition=wf.definition, input={}, status="running", created_by=alice)
    response = api.post(f"/api/v1/executions/{run.pk}/retry-failed")
    assert response.status_code == 409
    assert response.json()["code"] == "not_finished" and "still running" in response.json()["detail"]  # was "no failed or blocked items"
