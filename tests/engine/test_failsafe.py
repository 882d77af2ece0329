"""No run is ever left stuck (DESIGN.md section 9): the fail-safe advance, the per-process
heartbeat, the sweep that handles each run on its own, and the sticky hop path.

Most tests drive the engine in this process on a queue no worker consumes, so that they
decide exactly when each step runs; the ones marked `worker` use a real worker process.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.executions.engine import nodes, orchestrator, recovery, steps
from apps.executions.engine.orchestrator import Sticky, finish_step, start_execution, sweep
from apps.executions.engine.runtime import Runtime
from apps.executions.models import Execution, StepRun
from apps.workflows.services import create_workflow
from tests.conftest import WorkerProcess
from tests.helpers import RecordingServer, wait_for, wait_until


def make(alice, nodes, edges=(), **extra):
    definition = {"format_version": 1, "nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges], **extra}
    return create_workflow(owner=alice, name=f"wf {uuid.uuid4().hex[:8]}", definition=definition)


def noop(node_id, **extra):
    return {"id": node_id, "type": "activity", "activity": "noop", "params": {}, **extra}


@pytest.fixture
def nowhere(own_queue):
    """Dispatch to a queue nobody consumes: the test runs each step itself."""
    return own_queue


def run_pending(execution: Execution, *, limit: int = 50) -> None:
    """Run the run's pending steps in this process, as a worker would, until none is left."""
    for _ in range(limit):
        step = execution.steps.filter(status="pending").order_by("id").first()
        if step is None:
            return
        orchestrator.execute_step(step.pk, worker="test@here", task_id=f"t-{step.pk}")


@contextmanager
def sweeping_alone():
    """Hold the sweep's advisory lock (this connection's sweep() takes it again, re-entrant), so a
    real worker's own sweep on this database cannot handle these runs meanwhile."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [recovery.SWEEP_LOCK_ID])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [recovery.SWEEP_LOCK_ID])


def error_event(execution: Execution) -> dict:
    return execution.events.get(type="execution_failed").payload["error"]


#
# Run-time errors of conditions are the node's failures
#


def test_an_invalid_pattern_from_run_input_fails_the_condition_node_and_the_run_ends(transactional_db, alice, nowhere):
    workflow = make(alice, [
        noop("first"),
        {"id": "check", "type": "condition", "cases": [{"when": {"var": "$.input.text", "op": "matches", "value_from": "$.input.pat"}, "to": "yes"}], "default": "no"},
        noop("yes"), noop("no"),
    ], [("first", "check")])
    execution = start_execution(workflow, {"text": "hello", "pat": "("})
    run_pending(execution)
    execution.refresh_from_db()
    assert execution.status == "failed"
    assert execution.error["type"] == "ConditionError"
    assert execution.error["node"] == "check"
    assert "not a valid regular expression" in execution.error["message"]
    assert not execution.steps.filter(status__in=["running", "pending", "waiting"]).exists()


def test_a_condition_failure_goes_to_the_nodes_error_handler(transactional_db, alice, nowhere):
    workflow = make(alice, [
        noop("first"),
        {"id": "check", "type": "condition", "on_error": "recover", "cases": [{"when": {"var": "$.input.text", "op": "matches", "value_from": "$.input.pat"}, "to": "yes"}], "default": "yes"},
        noop("yes"),
        {"id": "recover", "type": "activity", "activity": "set", "params": {"values": {"recovered": True}}},
    ], [("first", "check")])
    execution = start_execution(workflow, {"text": "hello", "pat": "(unclosed"})
    run_pending(execution)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error
    assert execution.variables.get("recovered") is True
    assert execution.steps.get(node_id="check").error["type"] == "ConditionError"


#
# An exception escaping the advance fails the run with an EngineError, the result kept
#


def test_an_exception_inside_a_nodes_activation_fails_the_run_and_keeps_the_steps_result(transactional_db, alice, nowhere, monkeypatch):
    workflow = make(alice, [noop("first"), {"id": "wait", "type": "timer", "duration": 60}], [("first", "wait")])
    execution = start_execution(workflow, {})

    def broken(rt, scope, node, extra):  # a bug in a node type's activation
        raise ZeroDivisionError("division by zero in the timer")

    monkeypatch.setattr(nodes.timer, "activate", broken)
    run_pending(execution)
    execution.refresh_from_db()
    assert execution.status == "failed"
    assert execution.error == {"type": "EngineError", "message": "ZeroDivisionError: division by zero in the timer", "node": "wait"}
    first = execution.steps.get(node_id="first")
    assert first.status == "completed" and first.advanced  # the result was committed
    types = list(execution.events.values_list("type", flat=True).order_by("seq"))
    assert types[-3:] == ["step_completed", "engine_error", "execution_failed"]
    assert not execution.steps.filter(status__in=["running", "pending", "waiting"]).exists()


def test_a_bug_while_failing_the_run_still_ends_it(transactional_db, alice, nowhere, monkeypatch):
    workflow = make(alice, [noop("first"), noop("second")], [("first", "second")])
    execution = start_execution(workflow, {})

    def broken(*args, **kwargs):
        raise RuntimeError("broken everywhere")

    monkeypatch.setattr(nodes.activity, "activate", broken)
    monkeypatch.setattr(Runtime, "_cancel_scope", broken)  # the usual way of failing the run breaks too
    run_pending(execution)
    execution.refresh_from_db()
    assert execution.status == "failed"
    assert execution.error["type"] == "EngineError"
    assert execution.error["node"] == "second"


#
# The heartbeat covers only what this process runs now
#


def test_a_step_whose_result_cannot_be_recorded_stops_being_heartbeated_and_is_recovered(transactional_db, alice, nowhere, monkeypatch, settings):
    workflow = make(alice, [noop("first"), noop("second")], [("first", "second")])
    execution = start_execution(workflow, {})
    step = execution.steps.get(node_id="first")

    def database_away(*args, **kwargs):
        raise OperationalError("the database system is starting up")

    monkeypatch.setattr(steps, "finish_step", database_away)
    monkeypatch.setattr(steps.time, "sleep", lambda seconds: None)
    orchestrator.execute_step(step.pk, worker="test@here", task_id="t1")
    monkeypatch.undo()
    step.refresh_from_db()
    assert step.status == "running"  # the result was lost with the database
    assert orchestrator.running_steps() == []
    assert orchestrator.heartbeat("test@here") == 0  # nothing keeps it looking alive
    settings.WB_STEP_HEARTBEAT_GRACE = 0
    with sweeping_alone():
        counts = sweep()
    assert counts["reaped"] == 1
    step.refresh_from_db()
    assert step.status == "failed" and step.error["type"] == "WorkerLost"
    retry = execution.steps.filter(node_id="first").order_by("-attempt").first()
    assert retry.attempt == 2 and retry.status == "pending"
    run_pending(execution)
    execution.refresh_from_db()
    assert execution.status == "completed", execution.error


#
# The sweep: each run on its own
#


def test_the_sweep_handles_a_poisoned_run_and_still_recovers_a_healthy_stalled_one(transactional_db, alice, nowhere, monkeypatch):
    poisoned_wf = make(alice, [noop("first"), {"id": "wait", "type": "timer", "duration": 60}], [("first", "wait")])
    healthy_wf = make(alice, [noop("first"), noop("second")], [("first", "second")])
    poisoned = start_execution(poisoned_wf, {})
    healthy = start_execution(healthy_wf, {})
    # Both first steps finished, and neither advance happened (a lost chord callback, say).
    def broken(rt, scope, node, extra):
        raise KeyError("poison")

    monkeypatch.setattr(nodes.timer, "activate", broken)
    with sweeping_alone():
        for execution in (poisoned, healthy):
            step = execution.steps.get(node_id="first")
            StepRun.objects.filter(pk=step.pk).update(status="running")
            finish_step(step.pk, "completed", {"ok": True}, advance_now=False)
        StepRun.objects.filter(execution__in=[poisoned, healthy]).update(finished_at=timezone.now() - timedelta(seconds=10))
        counts = sweep()
    assert counts["advanced"] == 2
    poisoned.refresh_from_db()
    healthy.refresh_from_db()
    assert poisoned.status == "failed" and poisoned.error["type"] == "EngineError"
    assert healthy.steps.get(node_id="second").status == "pending"  # advanced and dispatched


def test_the_sweep_fails_a_run_left_with_nothing_to_move_it_on(transactional_db, alice, nowhere):
    workflow = make(alice, [noop("first")])
    execution = start_execution(workflow, {})
    # As a bug of old could leave one: the step gone, the run still `running`.
    StepRun.objects.filter(execution=execution).update(status="cancelled", advanced=True)
    with sweeping_alone():
        Execution.objects.filter(pk=execution.pk).update(created_at=timezone.now() - timedelta(minutes=5))
        assert execution.pk in orchestrator.stuck_executions()
        counts = sweep()
    assert counts["stuck"] == 1
    execution.refresh_from_db()
    assert execution.status == "failed"
    assert execution.error["type"] == "EngineError"
    assert "no running step" in execution.error["message"]


#
# Sticky hops and the cost of a hop
#


def _claimed_first_step(alice, nodes, edges):
    workflow = make(alice, nodes, edges)
    execution = start_execution(workflow, {})
    step = execution.steps.get(node_id=nodes[0]["id"])
    StepRun.objects.filter(pk=step.pk).update(status="running", worker="test@here")
    return execution, step


def test_a_hop_claims_the_next_step_for_the_same_worker(transactional_db, alice, nowhere):
    execution, step = _claimed_first_step(alice, [noop("a"), noop("b")], [("a", "b")])
    follow = finish_step(step.pk, "completed", {"n": 1}, sticky=Sticky("test@here"))
    assert [s.node_id for s in follow] == ["b"]
    b = execution.steps.get(node_id="b")
    assert b.status == "running" and b.worker == "test@here"
    assert list(execution.events.filter(node_id="b").values_list("type", flat=True).order_by("seq")) == ["step_scheduled", "step_started"]


def _hop_queries(alice, length: int, at: int) -> int:
    nodes = [noop(f"n{i}") for i in range(length)]
    edges = [(f"n{i}", f"n{i + 1}") for i in range(length - 1)]
    workflow = make(alice, nodes, edges)
    execution = start_execution(workflow, {})
    # Steps n0 … n{at-1} already ran: the run has a history of `at` steps.
    for i in range(at):
        step = execution.steps.get(node_id=f"n{i}")
        StepRun.objects.filter(pk=step.pk).update(status="running")
        finish_step(step.pk, "completed", {"i": i}, sticky=Sticky("test@here"))
        StepRun.objects.filter(execution=execution, node_id=f"n{i + 1}").update(status="pending")
    step = execution.steps.get(node_id=f"n{at}")
    StepRun.objects.filter(pk=step.pk).update(status="running")
    with CaptureQueriesContext(connection) as queries:
        follow = finish_step(step.pk, "completed", {"i": at}, sticky=Sticky("test@here"))
    assert [s.node_id for s in follow] == [f"n{at + 1}"]
    return _statements(queries)


def _statements(queries) -> int:
    """Statements of the captured transaction(s), transaction control (BEGIN, COMMIT) aside."""
    sql = [q["sql"] for q in queries.captured_queries]
    assert sql.count("BEGIN") == 1 and sql.count("COMMIT") == 1, sql  # one transaction
    return len([s for s in sql if s not in ("BEGIN", "COMMIT")])


def test_a_sequence_hop_is_five_statements_however_long_the_run_already_is(transactional_db, alice, nowhere):
    # Lock the run and read the step; read the next node's steps; insert the next step (claimed);
    # write the finished step; insert the events and update the run (one statement).
    assert _hop_queries(alice, 4, at=1) == 5
    assert _hop_queries(alice, 60, at=50) == 5


def test_a_fan_out_of_100_is_a_fixed_number_of_statements(transactional_db, alice, nowhere):
    branches = [{"nodes": [noop(f"b{i}")]} for i in range(100)]
    execution, step = _claimed_first_step(alice, [noop("first"), {"id": "par", "type": "parallel", "branches": branches}], [("first", "par")])
    with CaptureQueriesContext(connection) as queries:
        finish_step(step.pk, "completed", {}, sticky=Sticky("test@here"))
    assert execution.steps.filter(scope__startswith="par[").count() == 100
    assert _statements(queries) == FAN_OUT_STATEMENTS


# Lock and read; read the next nodes' steps; insert the parallel's step; insert the 100 branch
# steps (one statement, with their dispatch time); write the finished step; insert the events and
# update the run (one statement). Nothing is written after commit but the chord's messages.
FAN_OUT_STATEMENTS = 6


def test_a_for_each_item_completion_reads_once_and_does_not_grow_with_the_items(transactional_db, alice, nowhere):
    def completion(count: int) -> int:
        workflow = make(alice, [{"id": "each", "type": "loop", "mode": "for_each", "items": "$.input.items", "concurrency": 2,
                                 "aggregate": "count", "body": {"nodes": [noop("item")]}}])
        execution = start_execution(workflow, {"items": list(range(count))})
        step = execution.steps.get(scope="each[0]/")
        StepRun.objects.filter(pk=step.pk).update(status="running")
        with CaptureQueriesContext(connection) as queries:
            follow = finish_step(step.pk, "completed", {}, sticky=Sticky("test@here"))
        assert [s.scope for s in follow] == ["each[2]/"]  # the next item, claimed for this worker
        return _statements(queries)

    # Lock and read the item's step; read its scope and the loop's step (one statement); write the
    # item's step (still guarded) and the loop's counters (one statement); insert the next item's
    # step; insert the events and update the run (one statement).
    assert completion(5) == completion(300) == 5


#
# A real worker killed while it runs a sticky step
#


@pytest.mark.worker
def test_killing_the_worker_in_a_sticky_step_completes_the_run_with_each_attempt_once(transactional_db, alice, own_queue):
    with RecordingServer(delays={"/slow": 3.0}) as remote:
        workflow = make(alice, [
            {"id": "fast", "type": "activity", "activity": "http.request", "params": {"url": remote.url + "/fast", "method": "POST"}},
            {"id": "slow", "type": "activity", "activity": "http.request", "params": {"url": remote.url + "/slow", "method": "POST"}},
        ], [("fast", "slow")])
        first = WorkerProcess(own_queue, concurrency=2)
        first.start()
        second = WorkerProcess(own_queue, concurrency=2)
        try:
            execution = start_execution(workflow, {})
            wait_until(lambda: remote.hits("/slow") == 1, message="the sticky step to reach the remote API")
            slow = execution.steps.get(node_id="slow")
            assert slow.task_id == "sticky" and slow.worker.startswith(first.name)
            first.kill()
            second.start()
            execution = wait_for(execution, timeout=60)
        finally:
            first.kill()
            second.stop()
    assert execution.status == "completed", execution.error
    attempts = list(execution.steps.filter(node_id="slow").order_by("attempt"))
    assert [a.status for a in attempts] == ["failed", "completed"]
    assert attempts[0].error["type"] == "WorkerLost"
    assert remote.hits("/fast") == 1
    assert remote.hits("/slow") == execution.events.filter(node_id="slow", type="step_started").count() == 2


def _item_completion_statements(alice, width: int) -> tuple[int, list[str]]:
    items = [{"id": "first"}] + [{"id": f"i{k}", "depends_on": ["first"]} for k in range(width)]
    workflow = make(alice, [{"id": "build", "type": "dynamic", "items": "$.input.items", "max_concurrent": 4, "activity": "noop"}])
    execution = start_execution(workflow, {"items": items})
    step = execution.steps.get(scope="build[0]/")  # the item `first`, the only one ready
    StepRun.objects.filter(pk=step.pk).update(status="running")
    with CaptureQueriesContext(connection) as queries:
        follow = finish_step(step.pk, "completed", {"built": True}, sticky=Sticky("test@here"))
    started = list(execution.steps.filter(scope__regex=r"^build\[\d+\]/$").exclude(pk=step.pk).values_list("status", flat=True))
    assert len(started) == 4 and len(follow) == 1  # four slots refilled at once, one of them sticky
    return _statements(queries), [q["sql"][:100] for q in queries.captured_queries]


def test_a_dynamic_item_completion_is_a_fixed_number_of_statements_whatever_the_node_size(transactional_db, alice, nowhere):
    small, sql = _item_completion_statements(alice, 10)
    large, _ = _item_completion_statements(alice, 300)
    # Lock and read; read the item's scope and the node's step (one statement); write the item's
    # row; count the items in flight; unlock its dependents; start the ready ones (one UPDATE …
    # RETURNING); insert their four steps (one statement, one of them claimed, three with their
    # dispatch time); write the finished step; insert the events and update the run (one
    # statement). The node's bookkeeping (its `state`, which grows with the items) is not written.
    assert small == large == DYNAMIC_ITEM_STATEMENTS, "\n".join(sql)


DYNAMIC_ITEM_STATEMENTS = 9
