"""Nothing is written to a run after its last event: a step of a finished run is not started."""

from __future__ import annotations

import pytest

from apps.executions.engine.orchestrator import execute_step
from apps.executions.models import Execution, StepRun
from apps.workflows.services import create_workflow


@pytest.mark.django_db
def test_a_step_left_pending_in_a_finished_run_is_not_started(alice, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    workflow = create_workflow(owner=alice, name="Finished", definition={"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "noop", "params": {}}]})
    run = Execution.objects.create(workflow=workflow, definition=workflow.definition, status="completed", input={}, variables={}, last_seq=3)
    stray = StepRun.objects.create(execution=run, node_id="a", node_type="activity", activity="noop", status="pending")
    execute_step(stray.pk, worker="w", task_id="t")
    stray.refresh_from_db()
    assert stray.status == "pending" and stray.started_at is None
    assert not run.events.exists()
    run.refresh_from_db()
    assert run.last_seq == 3
