from __future__ import annotations

import time

import pytest

from apps.workflows.models import Workflow
from apps.workflows.services import create_workflow

DEFINITION = {
    "format_version": 1,
    "nodes": [
        {"id": "greet", "type": "activity", "activity": "log", "params": {"message": "hi {{ $.input.name | \"there\" }}"}},
        {"id": "done", "type": "activity", "activity": "set", "params": {"values": {"greeted": True}}},
    ],
    "edges": [{"from": "greet", "to": "done"}],
}


@pytest.fixture
def workflow(alice) -> Workflow:
    return create_workflow(owner=alice, name="Nightly report", tags=["reports"], definition=DEFINITION)


def wait_for(execution, timeout: float = 30.0):
    """Poll an execution until it is finished (or the timeout passes); returns it refreshed."""
    from apps.executions.choices import FINISHED_EXECUTION

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution.refresh_from_db()
        if execution.status in FINISHED_EXECUTION:
            return execution
        time.sleep(0.05)
    execution.refresh_from_db()
    return execution
