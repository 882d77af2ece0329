"""Signals, signal_wait, pause/resume, continue-as-new and durable timers on the real worker."""

from __future__ import annotations

import uuid

import pytest

from apps.executions.engine.orchestrator import start_execution
from apps.executions.models import Execution
from apps.workflows.services import create_workflow
from tests.conftest import WorkerProcess
from tests.helpers import wait_for, wait_until
from workflowsite.celery import app

pytestmark = pytest.mark.worker

ORDER_SIGNALS = [
    {"name": "discount", "schema": {"type": "object", "properties": {"percent": {"type": "number", "minimum": 0, "maximum": 100}}, "required": ["percent"]},
     "handler": {"set": {"discount": "$.signal.payload.percent"}}},
    {"name": "shipped", "schema": {"type": "object", "properties": {"tracking": {"type": "string"}}, "required": ["tracking"]}},
]


def order_workflow(alice, *, timeout=None, timeout_to=True):
    wait = {"id": "wait_ship", "type": "signal_wait", "signal": "shipped", "output": "shipment"}
    nodes = [{"id": "start", "type": "activity", "activity": "log", "params": {"message": "waiting"}}, wait,
             {"id": "done", "type": "activity", "activity": "set", "params": {"values": {"state": "shipped"}}}]
    if timeout:
        wait["timeout"] = timeout
        if timeout_to:
            wait["timeout_to"] = "chase"
            nodes.append({"id": "chase", "type": "activity", "activity": "set", "params": {"values": {"state": "chased"}}})
    return create_workflow(owner=alice, name=f"order {uuid.uuid4().hex[:6]}", definition={
        "format_version": 1, "signals": ORDER_SIGNALS, "variables": {"discount": 0}, "nodes": nodes,
        "edges": [{"from": "start", "to": "wait_ship"}, {"from": "wait_ship", "to": "done"}]})


def test_a_signal_updates_variables_and_wakes_the_wait(worker, alice, api):
    execution = start_execution(order_workflow(alice), {})
    wait_until(lambda: execution.steps.filter(node_id="wait_ship", status="waiting").exists(), message="the wait")
    response = api.post(f"/api/v1/executions/{execution.pk}/signals/discount", {"payload": {"percent": 15}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["delivered"] == "recorded"
    execution.refresh_from_db()
    assert execution.variables["discount"] == 15 and execution.status == "running"
    response = api.post(f"/api/v1/executions/{execution.pk}/signals/shipped", {"payload": {"tracking": "ZX9"}}, format="json")
    assert response.json()["delivered"] == "woke"
    execution = wait_for(execution)
    assert execution.status == "completed"
    assert execution.variables["shipment"] == {"tracking": "ZX9"} and execution.variables["state"] == "shipped"
    received = execution.events.filter(type="signal_received").order_by("seq")
    assert [(e.payload["signal"], e.actor) for e in received] == [("discount", "alice"), ("shipped", "alice")]


def test_a_signal_sent_before_the_wait_is_kept_for_it(worker, alice):
    from apps.executions.engine.signals import send_signal

    wf = create_workflow(owner=alice, name=f"early {uuid.uuid4().hex[:6]}", definition={
        "format_version": 1, "signals": [{"name": "go"}],
        "nodes": [{"id": "slow", "type": "activity", "activity": "delay", "params": {"seconds": 0.5}}, {"id": "w", "type": "signal_wait", "signal": "go", "output": "got"}],
        "edges": [{"from": "slow", "to": "w"}]})
    execution = start_execution(wf, {})
    send_signal(execution, "go", {"n": 1}, actor="test")
    execution = wait_for(execution)
    assert execution.status == "completed" and execution.variables["got"] == {"n": 1}


def test_a_signal_wait_times_out_onto_its_timeout_path(worker, alice):
    execution = wait_for(start_execution(order_workflow(alice, timeout=0.5), {}))
    assert execution.status == "completed"
    assert execution.variables["state"] == "chased"
    assert execution.variables["shipment"] == {"timed_out": True}  # the wait's output, as documented
    assert {s.node_id: s.status for s in execution.steps.all()}["done"] == "skipped"


def test_a_signal_wait_without_a_timeout_path_fails_on_timeout(worker, alice):
    execution = wait_for(start_execution(order_workflow(alice, timeout=0.3, timeout_to=False), {}))
    assert execution.status == "failed" and execution.error["type"] == "SignalTimeout"


def test_bad_signals_are_refused_with_clear_errors(worker, alice, api, api_as, charlie):
    execution = start_execution(order_workflow(alice), {})
    url = f"/api/v1/executions/{execution.pk}/signals"
    bad = api.post(f"{url}/discount", {"payload": {"percent": 150}}, format="json")
    assert bad.status_code == 400 and "payload.percent" in bad.json()
    missing = api.post(f"{url}/shipped", {"payload": {}}, format="json")
    assert missing.status_code == 400 and "payload.tracking" in missing.json()
    undeclared = api.post(f"{url}/teleport", {"payload": {}}, format="json")
    assert undeclared.status_code == 400 and "teleport" in undeclared.json()["name"][0]
    assert api_as(charlie).post(f"{url}/shipped", {"payload": {"tracking": "x"}}, format="json").status_code == 404
    execution.refresh_from_db()
    assert execution.variables["discount"] == 0
    assert api.post(f"{url}/cancel", {}, format="json").json()["delivered"] == "cancelled"
    wait_for(execution)
    finished = api.post(f"{url}/shipped", {"payload": {"tracking": "x"}}, format="json")
    assert finished.status_code == 409
    assert execution.events.filter(type="execution_cancelled", actor="alice").exists()


def test_pause_holds_new_steps_until_resume(worker, alice, api):
    wf = create_workflow(owner=alice, name=f"pause {uuid.uuid4().hex[:6]}", definition={"format_version": 1, "nodes": [
        {"id": "first", "type": "activity", "activity": "delay", "params": {"seconds": 2.5}},
        {"id": "second", "type": "activity", "activity": "noop"},
        {"id": "third", "type": "activity", "activity": "noop"}],
        "edges": [{"from": "first", "to": "second"}, {"from": "second", "to": "third"}]})
    execution = start_execution(wf, {})
    wait_until(lambda: execution.steps.filter(node_id="first", status="running").exists(), message="first to run")
    assert api.post(f"/api/v1/executions/{execution.pk}/pause").status_code == 200
    wait_until(lambda: execution.steps.filter(node_id="first", status="completed").exists(), message="first to finish")
    import time

    time.sleep(1.0)  # give a wrongly started step every chance to show up
    assert not execution.steps.filter(node_id="second").exists()
    execution.refresh_from_db()
    assert execution.status == "paused"
    assert api.post(f"/api/v1/executions/{execution.pk}/pause").status_code == 409
    assert api.post(f"/api/v1/executions/{execution.pk}/resume").status_code == 200
    execution = wait_for(execution)
    assert execution.status == "completed"
    paused_at = execution.events.get(type="execution_paused").seq
    resumed_at = execution.events.get(type="execution_resumed").seq
    second_started = execution.events.get(type="step_scheduled", node_id="second").seq
    assert second_started > resumed_at > paused_at


def test_a_long_running_loop_continues_as_new_keeping_its_state(worker, alice, api):
    wf = create_workflow(owner=alice, name=f"loop {uuid.uuid4().hex[:6]}", definition={
        "format_version": 1, "variables": {"total": 0},
        "nodes": [
            {"id": "setup", "type": "activity", "activity": "set", "params": {"values": {"label": "counter"}}},
            {"id": "count", "type": "loop", "mode": "while", "long_running": True, "continue_every": 40, "max_iterations": 1000,
             "condition": {"var": "$.vars.total", "op": "lt", "value": 100},
             "body": {"nodes": [{"id": "add", "type": "activity", "activity": "set", "params": {"values": {"total": "$.iteration"}}}]}},
        ],
        "edges": [{"from": "setup", "to": "count"}]})
    first = start_execution(wf, {})
    wait_until(lambda: Execution.objects.filter(workflow=wf, status="completed").exists(), timeout=120, message="the chain to finish")
    last = Execution.objects.get(workflow=wf, status="completed")
    runs = list(Execution.objects.filter(workflow=wf).order_by("id"))
    assert [r.status for r in runs] == ["continued", "continued", "completed"]
    assert last.variables["total"] == 100 and last.variables["label"] == "counter"
    assert last.continued_from.continued_from_id == first.pk
    # History per run stays bounded: each run holds at most continue_every iterations.
    assert all(r.steps.filter(node_id="add").count() <= 40 for r in runs)
    chain = api.get(f"/api/v1/executions/{first.pk}/chain").json()
    assert [r["id"] for r in chain["runs"]] == [r.pk for r in runs]
    # iterations 0..100 (the last sets total to 100 and ends the loop)
    assert chain["totals"]["iterations"] == 101 and chain["totals"]["runs"] == 3


def test_a_timer_fires_after_the_worker_was_restarted(transactional_db, alice, settings):
    queue = f"wbtest-timer-{uuid.uuid4().hex[:6]}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    first, second = WorkerProcess(queue, concurrency=2), WorkerProcess(queue, concurrency=2)
    try:
        wf = create_workflow(owner=alice, name="timer restart", definition={"format_version": 1, "nodes": [
            {"id": "wait", "type": "timer", "duration": 3}, {"id": "after", "type": "activity", "activity": "set", "params": {"values": {"woke": True}}}],
            "edges": [{"from": "wait", "to": "after"}]})
        first.start()
        execution = start_execution(wf, {})
        wait_until(lambda: execution.steps.filter(node_id="wait", status="waiting").exists(), message="the timer to start")
        first.kill()  # its countdown message dies with it
        second.start()
        execution = wait_for(execution, timeout=60)
    finally:
        first.kill()
        second.stop()
        app.conf.task_default_queue = previous
    assert execution.status == "completed" and execution.variables["woke"] is True


def test_a_signal_to_a_run_that_continued_as_new_reaches_the_current_run_of_its_chain(worker, alice, api):
    # A client keeps the id of the run it started; after a continue-as-new that id is `continued`.
    wf = create_workflow(owner=alice, name=f"inbox {uuid.uuid4().hex[:6]}", definition={
        "format_version": 1, "signals": [{"name": "item", "schema": {"type": "object"}}],
        "nodes": [{"id": "lp", "type": "loop", "mode": "while", "long_running": True, "continue_every": 1, "max_iterations": 100,
                   "condition": {"var": "$.iteration", "op": "lt", "value": 3},
                   "body": {"nodes": [{"id": "w", "type": "signal_wait", "signal": "item", "output": "last"}]}}]})
    first = start_execution(wf, {})
    url = f"/api/v1/executions/{first.pk}/signals/item"
    for i in range(3):
        wait_until(lambda: Execution.objects.filter(workflow=wf, status="running", steps__node_id="w", steps__status="waiting").exists(),
                   message=f"a run waiting for signal {i}")
        response = api.post(url, {"payload": {"i": i}}, format="json")
        assert response.status_code == 200, response.content  # was 409 "finished (continued)" from the second on
        assert response.json()["execution"] == first.pk
        if i:
            assert response.json()["sent_to"] != first.pk
    wait_until(lambda: Execution.objects.filter(workflow=wf, status="completed").exists(), message="the chain to finish")
    assert Execution.objects.get(workflow=wf, status="completed").variables["last"] == {"i": 2}
    # A chain that has finished for good still answers 409.
    assert api.post(url, {"payload": {"i": 9}}, format="json").status_code == 409


def test_a_signal_to_a_run_whose_stored_definition_no_longer_compiles_is_refused_not_a_500(worker, alice, api):
    execution = start_execution(order_workflow(alice), {})
    broken = {**execution.definition, "edges": [{"from": "start", "to": "nowhere"}]}
    Execution.objects.filter(pk=execution.pk).update(definition=broken)  # as an operator's hand edit would
    answer = api.post(f"/api/v1/executions/{execution.pk}/signals/shipped", {"payload": {"tracking": "x"}}, format="json")
    assert answer.status_code == 409
    assert "no longer compiles" in str(answer.json())
    execution.refresh_from_db()
    assert not execution.events.filter(type="signal_received").exists()
