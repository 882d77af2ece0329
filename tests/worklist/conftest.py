from __future__ import annotations

import uuid

import pytest

from apps.executions.engine.orchestrator import start_execution
from apps.sharing.services import share_workflow
from apps.workflows.services import create_workflow
from apps.worklist.models import WorkItem
from tests.helpers import wait_until


def approval_definition(*, users=None, groups=None, due_in=None, outcomes=None, timeout_to=True) -> dict:
    approval = {
        "id": "review", "type": "approval", "title": "Approve order {{ $.input.order }}",
        "description": "Order {{ $.input.order }} for {{ $.input.amount }} EUR",
        "assignees": {"users": users or [], "groups": groups or []},
        "routes": {"approve": "ship", "reject": "refuse"}, "output": "review",
    }
    if outcomes:
        approval["outcomes"] = outcomes
    nodes = [
        {"id": "prep", "type": "activity", "activity": "log", "params": {"message": "asking"}},
        approval,
        {"id": "ship", "type": "activity", "activity": "set", "params": {"values": {"state": "shipped", "approver": "$.steps.review.output.by"}}},
        {"id": "refuse", "type": "activity", "activity": "set", "params": {"values": {"state": "refused", "why": "$.steps.review.output.comment"}}},
    ]
    if due_in:
        approval["due_in"] = due_in
        if timeout_to:
            approval["timeout_to"] = "chase"
            nodes.append({"id": "chase", "type": "activity", "activity": "set", "params": {"values": {"state": "expired"}}})
    return {"format_version": 1, "nodes": nodes, "edges": [{"from": "prep", "to": "review"}]}


@pytest.fixture
def approval_workflow(alice, team):
    """alice's approval workflow, shared (view) with her team, so its members may be offered its work."""

    def make(**kwargs):
        workflow = create_workflow(owner=alice, name=f"approve {uuid.uuid4().hex[:6]}", definition=approval_definition(**kwargs))
        share_workflow(workflow, team, "view", acting_user=alice)
        return workflow

    return make


@pytest.fixture
def offered():
    """Start a run and return (execution, its work item) once the item is offered."""

    def run(workflow, order="A-1", amount=120):
        execution = start_execution(workflow, {"order": order, "amount": amount})
        item = wait_until(lambda: WorkItem.objects.filter(execution=execution).first(), message="the work item")
        return execution, item

    return run


@pytest.fixture
def worker(worker):
    """The session's worker, left idle before the test's tables are flushed."""
    from tests.helpers import wait_until_idle

    yield worker
    wait_until_idle(worker)
