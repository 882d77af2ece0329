"""Executing steps inside a worker: claiming, running the activity, recording the result and
advancing in one transaction (the hop), sticky steps, chord members, and the registry of steps
this process runs now, which the heartbeat refreshes."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.utils import timezone

from apps.workflows.definition import storable
from apps.workflows.definition.registry import get_activity

from ..activities import ActivityContext, ActivityError, StepCancelled
from ..choices import FINISHED_EXECUTION, ExecutionStatus, StepStatus
from ..models import Execution, ExecutionEvent, StepRun
from . import messages, publish, store
from .dispatch import _UNUSED_RUN_COLUMNS, Sticky, _apply, _hostname, _schedule_deadline, plan_of, queue_of, send_steps
from .failures import _STEP_EVENT, _TRANSIENT, _Blame, _fail_on_engine_error
from .redaction import redact
from .runtime import WORKER_LOST, Runtime, error_dict

logger = logging.getLogger("workflow.engine")


# A worker runs the steps its advances hand back (local steps, sticky steps) for at most this
# long, or this many, before handing the rest to the queue (fairness between runs).
STICKY_BUDGET_SECONDS = 0.5


STICKY_BUDGET_STEPS = 200


_RUN_TABLE = Execution._meta.db_table


_EVENT_TABLE = ExecutionEvent._meta.db_table


_STEP_TABLE = StepRun._meta.db_table


_STEP_FIELDS, _STEP_COLUMNS = store.select_list(StepRun, "t")


# The claim in one statement (one round trip, one commit). Lock order as in finish_step, advance
# and cancel: the run's row first (the UPDATE that takes the event's sequence number; `claimed`
# reads `run`, so it runs after it), then the step's row. No step starts while its run is paused,
# nor once it has finished. The deadline comes from the timeout the step carries (set at
# activation, so claiming never parses the definition).
_CLAIM_SQL = f"""
WITH run AS (
    UPDATE {_RUN_TABLE} e SET last_seq = e.last_seq + 1
    FROM {_STEP_TABLE} s
    WHERE s.id = %(step)s AND e.id = s.execution_id AND s.status = 'pending'
      AND e.status NOT IN ({
    ", ".join(f"'{status}'" for status in sorted({ExecutionStatus.PAUSED, *FINISHED_EXECUTION}))
})
    RETURNING e.id, e.last_seq
), claimed AS (
    UPDATE {_STEP_TABLE} t SET status = 'running', started_at = %(now)s, heartbeat_at = %(now)s, worker = %(worker)s,
        task_id = %(task)s,
        deadline_at = CASE WHEN jsonb_typeof(t.state -> 'timeout') = 'number'
                           THEN %(now)s::timestamptz + (t.state ->> 'timeout')::float8 * interval '1 second'
                           ELSE t.deadline_at END
    FROM run WHERE t.id = %(step)s AND t.status = 'pending'
    RETURNING {_STEP_COLUMNS}
), event AS (
    INSERT INTO {_EVENT_TABLE} (execution_id, seq, type, node_id, scope, step_id, payload, actor, created_at)
    SELECT run.id, run.last_seq, 'step_started', claimed.node_id, claimed.scope, claimed.id,
           jsonb_build_object('attempt', claimed.attempt, 'worker', %(worker)s::text), '', %(now)s
    FROM claimed, run
    RETURNING id, seq
)
SELECT claimed.*, event.id, event.seq FROM claimed, event
"""


def _claim(step_id: int, worker: str, task_id: str) -> StepRun | None:
    """Move a pending step to running, with its `step_started` event; None when it was not
    pending (duplicate delivery, cancelled, already run) or its run is paused or finished."""
    now = timezone.now()
    with store.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"step": step_id, "now": now, "worker": worker, "task": (task_id or "")[:64]})
        row = cursor.fetchone()
    if row is None:
        return None
    step = store.build(StepRun, _STEP_FIELDS, row[:-2])
    event_id, seq = row[-2:]
    payload = {"attempt": step.attempt, "worker": worker}
    event = ExecutionEvent(
        pk=event_id,
        execution_id=step.execution_id,
        seq=seq,
        type="step_started",
        node_id=step.node_id,
        scope=step.scope,
        step_id=step.pk,
        payload=payload,
        created_at=now,
    )
    publish.on_commit(step.execution_id, [event])
    if step.deadline_at:
        _schedule_deadline(step)
    return step


def _next_seq(execution_id: int, count: int = 1) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE executions_execution SET last_seq = last_seq + %s WHERE id = %s RETURNING last_seq",
            [count, execution_id],
        )
        return cursor.fetchone()[0]


def _still_running(step_id: int) -> bool:
    return StepRun.objects.filter(pk=step_id, status=StepStatus.RUNNING).exists()


def _run_activity(step: StepRun) -> tuple[str, Any, dict | None, list]:
    spec = get_activity(step.activity)
    ctx = ActivityContext(
        execution_id=step.execution_id,
        step_id=step.pk,
        node_id=step.node_id,
        attempt=step.attempt,
        deadline=step.deadline_at,
        variables={},
        still_running=lambda: _still_running(step.pk),
    )
    if spec is None:
        return (
            StepStatus.FAILED,
            None,
            error_dict(
                "UnknownActivity", f"no activity named {step.activity!r} is registered", step.node_id, retryable=False
            ),
            ctx.logs,
        )
    try:
        output = spec.fn(step.input or {}, ctx)
        if ctx.variables and step.activity == "set":
            output = ctx.variables
        unstorable = storable.problem(output, prefix="output")
        if unstorable:  # NUL, a lone surrogate or nesting PostgreSQL cannot store: the step's failure
            path, message = unstorable
            return (
                StepStatus.FAILED,
                None,
                error_dict("OutputNotStorable", f"{path}: {message}", step.node_id, retryable=False),
                ctx.logs,
            )
        return StepStatus.COMPLETED, output, None, ctx.logs
    except StepCancelled:
        return StepStatus.CANCELLED, None, None, ctx.logs
    except ActivityError as exc:
        return (
            StepStatus.FAILED,
            None,
            error_dict(
                exc.type,
                exc.message,
                step.node_id,
                retryable=exc.retryable,
                **({"details": redact(exc.details)} if exc.details else {}),
            ),
            ctx.logs,
        )
    except (OperationalError, InterfaceError) as exc:
        # The database went away under the activity (its cancel checks read it): an accident of
        # the infrastructure, not the step's failure. It is tried again like a lost worker's step.
        return (
            StepStatus.FAILED,
            None,
            error_dict(
                WORKER_LOST,
                f"the database was unreachable while this step ran ({type(exc).__name__}: {exc})"[:500],
                step.node_id,
            ),
            ctx.logs,
        )
    except Exception as exc:  # an activity's own bug is a step failure, not a worker crash
        logger.exception("activity %s failed", step.activity)
        return (
            StepStatus.FAILED,
            None,
            error_dict(type(exc).__name__, str(exc) or type(exc).__name__, step.node_id),
            ctx.logs,
        )


def finish_step(
    step_id: int,
    status: str,
    output: Any = None,
    error: dict | None = None,
    logs: list | None = None,
    *,
    expect: str = StepStatus.RUNNING,
    advance_now: bool = True,
    allow_inline: bool = False,
    sticky: Sticky | None = None,
) -> list[StepRun]:
    """Record a step's result and advance its run, in one transaction under the run's lock.

    Does nothing when the step is no longer `expect` (cancelled or timed out meanwhile).
    Returns steps for the caller to run: local steps to claim and run inline, and, with
    `sticky`, the next worker step already claimed for this worker (status running).

    The hop is one transaction: lock the run and read the step (one statement), read the
    steps the next nodes refer to, insert the next steps, write the finished step, insert
    the events, update the run. An exception while advancing records the result anyway
    and fails the run with an `EngineError` (`_fail_on_engine_error`).
    """
    fields = _result_fields(status, output, error, logs)
    blame = _Blame()
    try:
        with transaction.atomic():
            step = store.step_with_locked_run(StepRun, Execution, step_id, defer=_UNUSED_RUN_COLUMNS)
            if step is None or step.status != expect:
                return []
            blame.fallback = step.node_id
            execution = step.execution
            for key, value in fields.items():
                setattr(step, key, value)
            rt = Runtime(execution, plan_of(execution), allow_inline=allow_inline, sticky=sticky)
            blame.runtime = rt
            rt.event(
                _STEP_EVENT[status],
                node=step.node_id,
                scope=step.scope,
                step=step,
                payload=_step_payload(step, status, error),
            )
            if not advance_now or execution.status in FINISHED_EXECUTION or execution.status == ExecutionStatus.PAUSED:
                # Recorded, not taken into account: the chord callback, resume or the sweep will.
                step.advanced = execution.status in FINISHED_EXECUTION
                rt.record_finished(step, expect)
                _apply(rt.flush(), execution.pk)
                return []
            rt.record_finished(step, expect)
            rt.load_for_finish(step)
            rt.on_finished(step)
            effects = rt.flush()
            _apply(effects, execution.pk)
            return effects.inline
    except Runtime.Lost:  # the step changed under us (a chord member's own write): nothing to do
        return []
    except _TRANSIENT:
        raise
    except Exception as exc:
        _fail_on_engine_error(_execution_id_of(step_id), exc, node_id=blame.node, step_result=(step_id, expect, fields))
        return []


def _execution_id_of(step_id: int) -> int:
    return StepRun.objects.filter(pk=step_id).values_list("execution_id", flat=True).first() or 0


def _step_payload(step: StepRun, status: str, error: dict | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"attempt": step.attempt}
    if status == StepStatus.COMPLETED:
        payload["output"] = step.output
        payload["duration_ms"] = step.duration_ms
    elif error:
        payload["error"] = error
    return payload


def _result_fields(status: str, output: Any, error: dict | None, logs: list | None) -> dict[str, Any]:
    """The columns that record a step's result (secrets redacted); it joins the orchestrator's inbox."""
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "advanced": False}
    if output is not None:
        fields["output"] = redact(output)
    if error is not None:
        fields["error"] = error
    if logs:
        fields["logs"] = redact(logs)
    return fields


def execute_chord_step(step_id: int, *, worker: str = "", task_id: str = "") -> None:
    """Run one step of a chord header (a wait-for-all fan-out of single steps).

    The light path: claim and record with one conditional UPDATE each, taking no lock on
    the run's row, so a hundred branches do not queue behind each other. Their
    step_started / step_completed events are written by the chord callback's advance,
    which takes every finished branch into account at once (and the sweep does it should
    the callback be lost).
    """
    now = timezone.now()
    step = store.update_returning(
        StepRun,
        "status = 'running', started_at = %s, heartbeat_at = %s, worker = %s, task_id = %s",
        f"id = %s AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM {_RUN_TABLE} e WHERE e.id = "
        "t.execution_id AND e.status = 'paused')",
        [now, now, worker or _hostname(), (task_id or "")[:64], step_id],
    )
    if step is None:
        return
    if not step.in_chord:  # a retry of a chord member runs the ordinary way
        StepRun.objects.filter(pk=step_id).update(status=StepStatus.PENDING, started_at=None)
        execute_step(step_id, worker=worker, task_id=task_id)
        return
    timeout = step.state.get("timeout") if isinstance(step.state, dict) else None
    if timeout:
        step.deadline_at = now + timedelta(seconds=float(timeout))
        StepRun.objects.filter(pk=step_id).update(deadline_at=step.deadline_at)
        messages.send(messages.CHECK_DEADLINE, step.pk, countdown=float(timeout) + 0.05)
    with running(step_id):
        status, output, error, logs = _run_activity(step)
        if status == StepStatus.CANCELLED:
            return
        fields = _result_fields(status, output, error, logs)
        for key, value in fields.items():
            setattr(step, key, value)
        store.update(step, list(fields), where={"status": StepStatus.RUNNING})


def execute_step(step_id: int, *, worker: str = "", task_id: str = "") -> None:
    """Run one step (the body of the Celery task), then the steps its advance hands back: local
    steps, claimed here, and sticky steps, already claimed for this worker by the advance.

    A chain of sticky steps hands back to Celery after STICKY_BUDGET_STEPS steps or
    STICKY_BUDGET_SECONDS, so one run cannot hold a worker slot while others wait.
    """
    worker = worker or _hostname()
    queue: list[StepRun | int] = [step_id]
    started = time.monotonic()
    ran = 0
    while queue:
        current = queue.pop(0)
        if isinstance(current, StepRun):  # claimed by the advance (sticky), or a local step to claim
            step = (
                current if current.status == StepStatus.RUNNING else _claim(current.pk, worker, f"inline-{current.pk}")
            )
        else:
            step = _claim(current, worker, task_id if current == step_id else f"inline-{current}")
        ran += 1
        if step is None:
            continue
        within_budget = ran < STICKY_BUDGET_STEPS and time.monotonic() - started < STICKY_BUDGET_SECONDS
        with running(step.pk):
            status, output, error, logs = _run_activity(step)
            if status == StepStatus.CANCELLED:
                continue  # whoever cancelled it has recorded that
            follow = _finish_with_retries(
                step.pk,
                status,
                output,
                error,
                logs,
                advance_now=not step.in_chord,
                sticky=Sticky(worker) if within_budget else None,
            )
        if not within_budget and follow:
            # Over budget: the rest goes through the queue like any step.
            pending = [s.pk for s in follow]
            StepRun.objects.filter(pk__in=pending).update(dispatched_at=timezone.now())
            send_steps(pending, queue=queue_of(step.execution_id))
            continue
        queue.extend(follow)


def _finish_with_retries(
    step_id: int, status, output, error, logs, *, advance_now: bool, sticky: Sticky | None = None
) -> list[StepRun]:
    """Record a result through a transient database error (a deadlock victim, a restarted
    server). When the database stays away longer than the retries, the step is left
    `running`: this process stops heartbeating it, so the reaper gives it a new attempt."""
    delays = (0.2, 0.5, 1.0, 2.0, 4.0)
    for attempt, delay in enumerate(delays, start=1):
        try:
            return finish_step(
                step_id, status, output, error, logs, advance_now=advance_now, allow_inline=True, sticky=sticky
            )
        except DatabaseError:
            if attempt == len(delays):
                logger.error("could not record the result of step %s; the reaper will retry it", step_id, exc_info=True)
                return []
            logger.warning("recording step %s failed (attempt %s); retrying", step_id, attempt, exc_info=True)
            close_old_connections()
            time.sleep(delay)
    return []


_RUNNING: dict[int, float] = {}


_RUNNING_LOCK = threading.Lock()


@contextmanager
def running(step_id: int):
    """Mark `step_id` as running in this process for as long as the block lasts: only such
    steps are heartbeated, so a step whose result could not be recorded (or that an exception
    left behind) stops looking alive and the reaper recovers it."""
    with _RUNNING_LOCK:
        _RUNNING[step_id] = time.monotonic()
    try:
        yield
    finally:
        with _RUNNING_LOCK:
            _RUNNING.pop(step_id, None)


def running_steps() -> list[int]:
    with _RUNNING_LOCK:
        return list(_RUNNING)


def heartbeat(worker: str = "") -> int:
    """Mark alive the running steps this process is executing now (not every row that
    carries this worker's name); returns how many rows were refreshed."""
    ids = running_steps()
    if not ids:
        return 0
    return StepRun.objects.filter(pk__in=ids, status=StepStatus.RUNNING).update(heartbeat_at=timezone.now())
