"""A run acts with its initiator's rights: a child_workflow node starts only workflows that
the user who started the run may run themselves, and only active ones (issue 15)."""

from __future__ import annotations

import uuid

import pytest

from apps.executions.engine.orchestrator import start_execution
from apps.sharing.services import share_workflow
from apps.workflows.services import create_workflow, update_workflow
from tests.helpers import wait_for

pytestmark = pytest.mark.worker


def _child(owner, **fields):
    return create_workflow(
        owner=owner, name=f"child-{uuid.uuid4().hex[:6]}",
        definition={"format_version": 1, "nodes": [{"id": "x", "type": "activity", "activity": "set", "params": {"values": {"done": True}}}]},
        **fields,
    )


def _parent(owner, child_slug: str):
    return create_workflow(
        owner=owner, name=f"parent-{uuid.uuid4().hex[:6]}",
        definition={"format_version": 1, "nodes": [{"id": "call", "type": "child_workflow", "workflow": child_slug, "mode": "execute"}]},
    )


def _child_error(parent, starter):
    run = wait_for(start_execution(parent, {}, acting_user=starter))
    step = run.steps.get(node_id="call")
    return run, step.error or {}


def test_a_child_runs_when_the_starter_may_run_it(worker, alice):
    child = _child(alice)
    run, error = _child_error(_parent(alice, child.slug), alice)
    assert run.status == "completed", run.error
    assert not error
    assert child.executions.get().created_by == alice


def test_a_child_the_starter_may_only_view_is_refused(worker, alice, bob):
    child = _child(alice)
    share_workflow(child, bob, "view", acting_user=alice)
    parent = _parent(alice, child.slug)
    share_workflow(parent, bob, "change", acting_user=alice)  # bob may run the parent, not the child
    run, error = _child_error(parent, bob)
    assert run.status == "failed"
    assert error["type"] == "ChildWorkflowNotPermitted"
    assert "bob" in error["message"] and "may view" in error["message"]
    assert not child.executions.exists()


def test_an_inactive_child_is_refused(worker, alice):
    child = _child(alice)
    update_workflow(child, acting_user=alice, is_active=False)
    run, error = _child_error(_parent(alice, child.slug), alice)
    assert run.status == "failed"
    assert error["type"] == "ChildWorkflowNotPermitted" and "inactive" in error["message"]
    assert not child.executions.exists()


def test_a_superuser_owned_parent_started_by_an_editor_cannot_reach_a_strangers_workflow(worker, admin_user, bob, charlie):
    # The owner (a superuser) could see every workflow; the editor who starts the run cannot.
    secret_child = _child(charlie)
    parent = _parent(admin_user, secret_child.slug)
    share_workflow(parent, bob, "change", acting_user=admin_user)
    run, error = _child_error(parent, bob)
    assert run.status == "failed"
    assert error["type"] == "ChildWorkflowNotFound"
    assert not secret_child.executions.exists()


def test_a_child_started_by_a_child_keeps_the_first_starters_rights(worker, alice, bob):
    # alice's grandchild is not shared with bob: bob's run cannot reach it through a middle workflow.
    grandchild = _child(alice)
    middle = _parent(alice, grandchild.slug)
    share_workflow(middle, bob, "change", acting_user=alice)
    top = _parent(bob, middle.slug)
    run = wait_for(start_execution(top, {}, acting_user=bob))
    assert run.status == "failed"
    middle_run = middle.executions.get()
    assert middle_run.created_by == bob
    assert middle_run.steps.get(node_id="call").error["type"] == "ChildWorkflowNotFound"
    assert not grandchild.executions.exists()
