"""Child workflows run a chosen version (a number, latest, or pinned to the parent's start) and
may go to a Celery queue of their own (issue 18), end to end through the API with real workers."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from apps.executions.models import Execution
from apps.workflows.definition.validator import validate
from apps.workflows.services import create_workflow, update_workflow
from tests.conftest import WorkerProcess
from tests.helpers import wait_for, wait_until

pytestmark = pytest.mark.worker


def _child(alice):
    """A child whose version 1 sets says=one; version 2 (an edit) says=two."""
    child = create_workflow(owner=alice, name=f"child-{uuid.uuid4().hex[:6]}", definition=_says("one"))
    return child


def _says(word: str) -> dict:
    return {"format_version": 1, "nodes": [{"id": "x", "type": "activity", "activity": "set", "params": {"values": {"says": word}}}]}


def _parent(alice, child, **node):
    return create_workflow(owner=alice, name=f"parent-{uuid.uuid4().hex[:6]}", definition={
        "format_version": 1,
        "nodes": [
            {"id": "wait", "type": "signal_wait", "signal": "go"},
            {"id": "call", "type": "child_workflow", "workflow": child.slug, "output": "child", **node},
        ],
        "edges": [{"from": "wait", "to": "call"}],
        "signals": [{"name": "go"}],
    })


def _run(api, parent) -> int:
    response = api.post(f"/api/v1/workflows/{parent.pk}/runs", {"input": {}}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _go(api, run_id: int) -> Execution:
    response = api.post(f"/api/v1/executions/{run_id}/signals/go", {"payload": {}}, format="json")
    assert response.status_code == 200, response.content
    return wait_for(Execution.objects.get(pk=run_id))


def _child_run(parent_run: Execution) -> Execution:
    return Execution.objects.get(parent=parent_run)


def test_a_pinned_parent_keeps_starting_the_version_current_when_it_started(worker, alice, api, client):
    child = _child(alice)
    parent = _parent(alice, child, version="pinned")
    run_id = _run(api, parent)
    wait_until(lambda: Execution.objects.get(pk=run_id).status == "waiting" or Execution.objects.get(pk=run_id).steps.filter(node_id="wait", status="waiting").exists(), message="the parent to wait")
    update_workflow(child, acting_user=alice, definition=_says("two"), comment="v2")  # edited while the parent runs
    run = _go(api, run_id)
    assert run.status == "completed", run.error
    assert run.variables["child"] == {"says": "one"}
    child_run = _child_run(run)
    assert child_run.workflow_version == 1
    body = api.get(f"/api/v1/executions/{child_run.pk}").json()
    assert body["workflow_version"] == 1
    client.force_login(alice)
    page = client.get(reverse("executions:detail", args=[child_run.pk]))
    assert "runs version 1 of" in page.content.decode()
    started = run.events.get(type="child_started")
    assert started.payload["version"] == 1

    # The same parent started now pins version 2, and `latest` takes the current one too.
    run = _go(api, _run(api, parent))
    assert run.variables["child"] == {"says": "two"} and _child_run(run).workflow_version == 2


def test_a_version_number_runs_that_version_and_a_missing_one_fails_the_node(worker, alice, api):
    child = _child(alice)
    update_workflow(child, acting_user=alice, definition=_says("two"), comment="v2")
    run = _go(api, _run(api, _parent(alice, child, version=1)))
    assert run.status == "completed" and run.variables["child"] == {"says": "one"}
    run = _go(api, _run(api, _parent(alice, child)))  # latest by default
    assert run.variables["child"] == {"says": "two"} and _child_run(run).workflow_version == 2
    run = _go(api, _run(api, _parent(alice, child, version=7)))
    assert run.status == "failed"
    assert run.error["type"] == "ChildWorkflowVersionNotFound" and "has no version 7 (it has 2)" in run.error["message"]


def test_the_validator_names_a_bad_version_or_queue():
    problems = validate({
        "format_version": 1, "nodes": [{"id": "call", "type": "child_workflow", "workflow": "child", "version": "newest", "queue": "no spaces"}],
    })
    assert {(p.node, p.field) for p in problems} >= {("call", "version"), ("call", "queue")}, problems


def test_a_child_with_a_queue_runs_on_the_worker_that_serves_it(worker, alice, api):
    queue = f"wbtest-gpu-{uuid.uuid4().hex[:6]}"
    child = create_workflow(owner=alice, name=f"child-{uuid.uuid4().hex[:6]}", definition={
        "format_version": 1, "nodes": [{"id": "work", "type": "activity", "activity": "noop", "params": {}}],
    })
    parent = _parent(alice, child, queue=queue)
    gpu = WorkerProcess(queue, concurrency=2)
    gpu.start()
    try:
        run = _go(api, _run(api, parent))
    finally:
        gpu.stop()
    assert run.status == "completed", run.error
    child_run = _child_run(run)
    assert child_run.queue == queue
    assert child_run.steps.get(node_id="work").worker.startswith(gpu.name)  # not the default worker
    assert api.get(f"/api/v1/executions/{child_run.pk}").json()["queue"] == queue
