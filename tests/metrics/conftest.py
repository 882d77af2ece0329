"""Metrics fixtures: alice's and charlie's workflows, and a maker of ExecutionMetric rows."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from apps.metrics.models import ExecutionMetric, StepMetric
from apps.workflows.services import create_workflow

_ids = iter(range(10_000_000, 99_999_999))


def make_workflow(owner, name: str | None = None):
    definition = {"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "noop", "params": {}}], "edges": []}
    return create_workflow(owner=owner, name=name or f"wf {uuid.uuid4().hex[:8]}", definition=definition)


@pytest.fixture
def wf(alice):
    return make_workflow(alice, "Order intake")


@pytest.fixture
def charlies_wf(charlie):
    return make_workflow(charlie, "Charlie's own")


def run_metric(workflow, finished_at: datetime, duration_ms: float, status: str = "completed", error_type: str = "", trigger: str = "manual", steps: list[dict] | None = None) -> ExecutionMetric:
    """One finished run as the collector would have recorded it."""
    execution_id = next(_ids)
    started = finished_at - timedelta(milliseconds=duration_ms)
    metric = ExecutionMetric.objects.create(
        execution_id=execution_id, workflow=workflow, status=status, trigger=trigger, error_type=error_type,
        created_at=started, started_at=started, finished_at=finished_at, duration_ms=duration_ms, step_count=len(steps or []),
    )
    for i, step in enumerate(steps or []):
        StepMetric.objects.create(
            execution_id=execution_id, workflow=workflow, node_id=step.get("node_id", f"s{i}"), node_type=step.get("node_type", "activity"),
            activity=step.get("activity", "noop"), attempt=step.get("attempt", 1), status=step.get("status", "completed"),
            started_at=started, finished_at=finished_at, duration_ms=step["duration_ms"], queue_wait_ms=step.get("queue_wait_ms"),
        )
    return metric
