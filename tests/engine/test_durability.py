"""Losing a worker mid-step loses no execution (DESIGN.md section 3)."""

from __future__ import annotations


import pytest

from apps.executions.engine.orchestrator import start_execution
from apps.workflows.services import create_workflow
from tests.conftest import WorkerProcess
from tests.helpers import RecordingServer, wait_for, wait_until

pytestmark = pytest.mark.worker


def test_killing_the_worker_mid_step_then_starting_another_completes_the_run(transactional_db, alice, own_queue):
    with RecordingServer(delays={"/slow": 3.0}) as remote:
        definition = {
            "format_version": 1,
            "nodes": [
                {"id": "call", "type": "activity", "activity": "http.request", "params": {"url": remote.url + "/slow", "method": "POST"}},
                {"id": "after", "type": "activity", "activity": "http.request", "params": {"url": remote.url + "/after", "method": "POST"}},
            ],
            "edges": [{"from": "call", "to": "after"}],
        }
        workflow = create_workflow(owner=alice, name="kill me", definition=definition)
        first = WorkerProcess(own_queue, concurrency=2)
        first.start()
        second = WorkerProcess(own_queue, concurrency=2)
        try:
            execution = start_execution(workflow, {})
            wait_until(lambda: remote.hits("/slow") == 1, message="the step to reach the remote API")
            first.kill()  # SIGKILL in the middle of the step
            second.start()
            execution = wait_for(execution, timeout=60)
        finally:
            first.kill()
            second.stop()
    assert execution.status == "completed", execution.error
    attempts = list(execution.steps.filter(node_id="call").order_by("attempt"))
    assert [a.status for a in attempts] == ["failed", "completed"]
    assert attempts[0].error["type"] == "WorkerLost"
    started = execution.events.filter(node_id="call", type="step_started").count()
    # Each recorded attempt had its effect once: two attempts started, two requests arrived.
    assert remote.hits("/slow") == started == 2
    assert remote.hits("/after") == 1
