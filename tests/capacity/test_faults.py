"""Quick forms of the fault scenarios of benchmarks/chaos/run.py (issue 14): a few runs in flight, then a
worker is SIGKILLed, PostgreSQL is restarted, or Redis is restarted. What a user would notice: every run
ends (completed, or failed with a history that says why), no step completes twice, each attempt is
recorded once.

They run on a stack of their own (tests/capacity/faultstack.py: a throwaway PostgreSQL and Redis and
workers of their own), so restarting those servers disturbs no other test; the xdist group keeps the three
in one process, one after the other, on one migrated database (a session fixture: set up once in each
xdist process that runs one of them, torn down at its end).
"""

from __future__ import annotations

import time

import pytest

from tests.capacity.faultstack import FaultStack

pytestmark = pytest.mark.xdist_group("faults")

RUNS = 4
# Three short steps: a fault lands while every run has one in progress.
DEFINITION = {
    "format_version": 1,
    "nodes": [{"id": f"s{i}", "type": "activity", "activity": "delay", "params": {"seconds": 1.5}} for i in range(1, 4)],
    "edges": [{"from": "s1", "to": "s2"}, {"from": "s2", "to": "s3"}],
}
# docs/operations.md, "Recovery after a fault", with this stack's settings: a running step is re-dispatched
# WB_STEP_HEARTBEAT_GRACE (5 s) + WB_SWEEP_INTERVAL (1 s) after its worker stopped beating; a lost message
# WB_REDISPATCH_AFTER (5 s) after it was sent. The waits below are those plus generous slack for a busy box.
FINISH_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def fault_stack():
    stack = FaultStack()
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def stack(fault_stack):
    """The module's stack; the workers a test starts are gone after it."""
    yield fault_stack
    for proc in fault_stack.workers:
        if proc.poll() is None:
            fault_stack.kill(proc)
    fault_stack.workers.clear()


def _assert_no_step_twice(stack: FaultStack, ids: list[int]) -> None:
    assert stack.steps_completed_twice(ids) == [], "a step completed twice"
    assert stack.attempts_recorded_twice(ids) == [], "an attempt was recorded twice"
    # Each attempt started once: one step_started event per StepRun row.
    rows = stack.query(
        "SELECT s.id, (SELECT count(*) FROM executions_executionevent e WHERE e.step_id = s.id AND e.type = 'step_started') AS started "
        "FROM executions_steprun s WHERE s.execution_id = ANY(%s) AND s.started_at IS NOT NULL", [ids])
    assert all(r["started"] == 1 for r in rows), [r for r in rows if r["started"] != 1]


def _assert_ended_with_reasons(stack: FaultStack, runs: list[dict]) -> None:
    """Completed, or failed with an error and an execution_failed event that carries it."""
    for run in runs:
        assert run["status"] in ("completed", "failed"), run
        events = stack.events(run["id"])
        assert events[0]["type"] == "execution_started"
        if run["status"] == "completed":
            assert events[-1]["type"] == "execution_completed", events[-1]
            assert [e["node_id"] for e in events if e["type"] == "step_completed"] == ["s1", "s2", "s3"]
        else:
            assert run["error"] and run["error"].get("type") and run["error"].get("message"), run
            failed = [e for e in events if e["type"] == "execution_failed"]
            assert failed and failed[-1]["payload"], events
            assert any(e["type"] == "step_failed" for e in events), events


def test_sigkill_a_worker_mid_step_every_run_completes_each_attempt_once(stack):
    doomed = stack.start_worker(concurrency=4)
    doomed_name = f"{stack.queue}-0@"
    ids = stack.start_runs(DEFINITION, RUNS)  # the doomed worker takes them all

    stack.wait(
        lambda: stack.query("SELECT id FROM executions_steprun WHERE execution_id = ANY(%s) AND status = 'running' AND worker LIKE %s",
                            [ids, doomed_name + "%"]),
        timeout=30, message="the doomed worker to run a step")
    stack.kill(doomed)  # SIGKILL in the middle of its steps
    killed_at = time.time()
    survivor = stack.start_worker(concurrency=4)  # another worker (its sweep finds the lost steps)

    runs = stack.wait_finished(ids, timeout=FINISH_TIMEOUT)
    assert survivor.poll() is None
    assert [r["status"] for r in runs] == ["completed"] * RUNS, runs
    _assert_ended_with_reasons(stack, runs)
    _assert_no_step_twice(stack, ids)
    # The steps the killed worker held: their attempt failed as WorkerLost, and the next one completed
    # on the survivor, started within the documented grace (plus slack for a loaded machine).
    lost = stack.query("SELECT execution_id, node_id, attempt FROM executions_steprun WHERE execution_id = ANY(%s) AND status = 'failed'", [ids])
    assert lost, "no step was caught by the kill"
    for step in lost:
        attempts = stack.query(
            "SELECT attempt, status, error, worker, extract(epoch FROM started_at) AS started FROM executions_steprun "
            "WHERE execution_id = %s AND node_id = %s ORDER BY attempt", [step["execution_id"], step["node_id"]])
        assert [a["status"] for a in attempts] == ["failed", "completed"], attempts
        assert attempts[0]["error"]["type"] == "WorkerLost", attempts[0]
        assert attempts[0]["worker"].startswith(doomed_name) and not attempts[1]["worker"].startswith(doomed_name), attempts
        assert float(attempts[1]["started"]) - killed_at < 5 + 1 + 20, attempts
        events = [e["type"] for e in stack.events(step["execution_id"]) if e["node_id"] == step["node_id"] and e["type"] != "step_scheduled"]
        assert events == ["step_started", "step_failed", "step_started", "step_completed"], events


def test_restart_postgres_under_runs_in_flight_every_run_ends_and_says_why(stack):
    worker = stack.start_worker(concurrency=8)
    ids = stack.start_runs(DEFINITION, RUNS)
    stack.wait(lambda: len(stack.running_steps(ids)) >= RUNS - 1, timeout=30, message="steps in progress")

    stack.restart_postgres(down=3)  # fast shutdown: every session is cut

    runs = stack.wait_finished(ids, timeout=FINISH_TIMEOUT)
    assert worker.poll() is None, "the worker died with its database"
    _assert_ended_with_reasons(stack, runs)
    _assert_no_step_twice(stack, ids)


def test_restart_redis_under_runs_in_flight_every_run_ends_and_says_why(stack):
    worker = stack.start_worker(concurrency=8)
    ids = stack.start_runs(DEFINITION, RUNS)
    stack.wait(lambda: len(stack.running_steps(ids)) >= RUNS - 1, timeout=30, message="steps in progress")

    stack.restart_redis(down=3)  # SIGTERM (the append-only file is kept), up again 3 s later

    runs = stack.wait_finished(ids, timeout=FINISH_TIMEOUT)
    assert worker.poll() is None, "the worker died with its broker"
    _assert_ended_with_reasons(stack, runs)
    _assert_no_step_twice(stack, ids)
    # Nothing needed the database to say so: a Redis outage fails no run.
    assert [r["status"] for r in runs] == ["completed"] * RUNS, runs
