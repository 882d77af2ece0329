"""Starting, advancing, finishing, cancelling runs; executing steps; the sweep.

Every state change happens inside one transaction holding the execution's row
lock (SELECT … FOR UPDATE); Celery messages, revocations and live updates go out
after commit. Advancing twice is harmless: a finished step is taken into account
once (its `advanced` flag), and a step runs only if it can be claimed with a
conditional UPDATE from `pending`.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.workflows.definition.plan import Plan
from apps.workflows.definition.registry import get_activity
from apps.workflows.definition.validator import compile_definition

from ..activities import ActivityContext, ActivityError, StepCancelled
from ..choices import ACTIVE_STEP, FINISHED_EXECUTION, ExecutionStatus, StepStatus
from ..models import Execution, ExecutionEvent, StepRun, Timer
from . import hooks, publish
from .redaction import redact
from .runtime import WORKER_LOST, Runtime, SideEffects, error_dict

logger = logging.getLogger("workflow.engine")

# A worker runs the steps its advances hand back (local steps, sticky steps) for at most this
# long, or this many, before handing the rest to the queue (fairness between runs).
STICKY_BUDGET_SECONDS = 0.5
STICKY_BUDGET_STEPS = 200
# A run with nothing running, waiting or to advance for this long is failed by the sweep.
STUCK_AFTER_SECONDS = 30
SWEEP_LOCK_ID = 7_312_001


def _hostname() -> str:
    return f"{socket.gethostname()}"


#
# Plans of runs
#

# A run's definition is fixed when the run is created (edits of the workflow do not
# change it), so its compiled plan is memoised per run: claiming and finishing a step
# then neither read the definition column nor hash the definition again.
# Keyed by (id, created_at) so that a recreated database cannot alias an old run.
_PLANS: OrderedDict[tuple, Plan] = OrderedDict()
_PLANS_MAX = 1024
_PLANS_LOCK = threading.Lock()


def plan_of(execution: Execution) -> Plan:
    """The compiled plan of `execution` (its `definition` may be deferred: read on a miss only)."""
    key = (execution.pk, execution.created_at)
    with _PLANS_LOCK:
        plan = _PLANS.get(key)
        if plan is not None:
            _PLANS.move_to_end(key)
            return plan
    plan = compile_definition(execution.definition)
    _remember_plan(execution, plan)
    return plan


def _remember_plan(execution: Execution, plan: Plan) -> None:
    with _PLANS_LOCK:
        _PLANS[(execution.pk, execution.created_at)] = plan
        while len(_PLANS) > _PLANS_MAX:
            _PLANS.popitem(last=False)


# The columns the orchestrator never needs when it locks a run (read on demand if it does).
_UNUSED_RUN_COLUMNS = ("definition",)


#
# Side effects after commit
#


def _apply(effects: SideEffects, execution_id: int) -> None:
    """Register the side effects of a committed advance (runs them after commit)."""
    if not (effects.dispatch or effects.chords or effects.revoke or effects.timers or effects.events or effects.deadlines):
        return

    def run() -> None:
        from .. import tasks

        now = timezone.now()
        singles = effects.dispatch
        if singles:
            StepRun.objects.filter(pk__in=[s.pk for s in singles]).update(dispatched_at=now)
            if len(singles) == 1:
                tasks.run_step.apply_async((singles[0].pk,))
            else:
                from celery import group

                group(tasks.run_step.si(s.pk) for s in singles).apply_async()
        for batch in effects.chords:
            from celery import chord

            StepRun.objects.filter(pk__in=[s.pk for s in batch]).update(dispatched_at=now)
            chord(
                [tasks.run_chord_step.si(s.pk) for s in batch],
                tasks.advance_execution.si(execution_id),
            ).apply_async()
        for task_id in effects.revoke:
            try:
                tasks.app.control.revoke(task_id)
            except Exception:  # revocation is an optimisation: claimed steps check their status anyway
                logger.warning("could not revoke %s", task_id)
        for step in effects.deadlines:
            _schedule_deadline(step)
        for timer in effects.timers:
            countdown = max(0.0, (timer.fire_at - timezone.now()).total_seconds())
            tasks.fire_timer.apply_async((timer.pk,), countdown=countdown)
        if effects.events:
            publish.events_committed(execution_id, effects.events)

    transaction.on_commit(run)


#
# Starting
#


class InputError(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def with_input_defaults(definition: dict, data: Any) -> Any:
    """`data` with the input schema's top-level `default`s filled in where it leaves them out
    (as the run dialog pre-fills them), so an API or scheduled run gets the same input."""
    schema = definition.get("input_schema")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(data, dict) or not isinstance(properties, dict):
        return data
    defaults = {name: prop["default"] for name, prop in properties.items() if isinstance(prop, dict) and "default" in prop and name not in data}
    return {**defaults, **data} if defaults else data


def check_input(definition: dict, data: Any) -> Any:
    """`data` with the input schema's defaults filled in; InputError naming the field when it
    breaks the workflow's input schema."""
    from apps.workflows.definition.validator import first_data_error

    if not isinstance(data, dict):
        raise InputError("input", "the run input must be a JSON object")
    schema = definition.get("input_schema")
    if not schema:
        return data
    data = with_input_defaults(definition, data)
    problem = first_data_error(schema, data)
    if problem:
        path, message = problem
        raise InputError("input" + (f".{path}" if path else ""), message)
    return data


def start_execution(workflow, input: dict | None = None, *, acting_user=None, trigger: str = "manual", parent_step: StepRun | None = None, retry_of: Execution | None = None, continued_from: Execution | None = None, variables: dict | None = None, correlation_id: str = "") -> Execution:
    """Create a run of `workflow` and start it (dispatch happens after commit).

    Raises DefinitionError if the definition is invalid and InputError if the
    input breaks the input schema; nothing is written then.
    """
    if not correlation_id and hooks.registered("correlation_id"):
        correlation_id = hooks.call("correlation_id")  # the HTTP request's or task's id
    definition = workflow.definition
    plan = compile_definition(definition)
    input = check_input(definition, {} if input is None else input)
    with transaction.atomic():
        execution = Execution.objects.create(
            workflow=workflow,
            definition=definition,
            input=input,
            variables={**plan.variables, **(variables or {})},
            trigger=trigger,
            created_by=acting_user if getattr(acting_user, "is_authenticated", False) else None,
            parent=parent_step.execution if parent_step else None,
            parent_step=parent_step,
            retry_of=retry_of,
            continued_from=continued_from,
            status=ExecutionStatus.RUNNING,
            correlation_id=correlation_id,
        )
        _remember_plan(execution, plan)
        rt = Runtime(execution, plan)
        rt.start()
        effects = rt.flush()
        _apply(effects, execution.pk)
    return execution


#
# Advancing
#


def advance(execution_id: int, *, allow_inline: bool = False) -> list[StepRun]:
    """Take finished steps into account and start what is ready.

    Returns local steps the caller (a worker) should run inline. An exception while
    advancing fails the run with an `EngineError` event (see `_fail_on_engine_error`).
    """
    blame = _Blame()
    try:
        with transaction.atomic():
            execution = Execution.objects.select_for_update().defer(*_UNUSED_RUN_COLUMNS).filter(pk=execution_id).first()
            if execution is None:
                return []
            if execution.status in FINISHED_EXECUTION:
                StepRun.objects.filter(execution=execution, advanced=False).update(advanced=True)
                return []
            if execution.status == ExecutionStatus.PAUSED:
                return []
            inbox = _inbox(execution)
            if not inbox:
                return []
            rt = Runtime(execution, plan_of(execution), allow_inline=allow_inline)
            blame.runtime = rt
            return _advance_inbox(rt, inbox)
    except _TRANSIENT:
        raise
    except Exception as exc:
        _fail_on_engine_error(execution_id, exc, node_id=blame.node)
        return []


def _inbox(execution: Execution) -> list[StepRun]:
    """Finished steps the orchestrator has not taken into account yet, in finishing order."""
    return list(
        StepRun.objects.filter(execution=execution, advanced=False, status__in=[StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED]).order_by("finished_at", "id")
    )


def _advance_inbox(rt: Runtime, inbox: list[StepRun]) -> list[StepRun]:
    """Take `inbox` into account with `rt` (the run's lock is held), write, schedule side
    effects; return the local steps to run inline."""
    execution = rt.ex
    rt.prime({"", *(step.scope for step in inbox)})
    for step in inbox:
        cached = rt.latest(step.scope, step.node_id)
        if cached is not None and cached.pk == step.pk:
            step = cached
        if step.advanced:
            continue
        rt.on_finished(step)
        if execution.status in FINISHED_EXECUTION:
            break
    effects = rt.flush()
    _apply(effects, execution.pk)
    return effects.inline


#
# When the engine itself fails
#

# Errors of the database connection: the work is retried (or recovered by the sweep), never
# blamed on the run.
_TRANSIENT = (OperationalError, InterfaceError)


class _Blame:
    """Which node an exception escaping an advance is blamed on (the runtime's current node)."""

    runtime: Runtime | None = None
    fallback: str = ""

    @property
    def node(self) -> str:
        return (self.runtime.current_node if self.runtime is not None else "") or self.fallback


def _fail_on_engine_error(execution_id: int, exc: BaseException, *, node_id: str = "", step_result: tuple | None = None) -> None:
    """An exception escaped an advance (its transaction rolled back): in a new transaction,
    record the finished step's result (`step_result`: step id, expected status, columns) and
    fail the run with an `EngineError` naming the node, the exception's type and message.

    The run then holds nothing running that nobody will finish (DESIGN.md section 9).
    """
    logger.error("engine error in execution %s at node %r", execution_id, node_id or "?", exc_info=exc)
    error = error_dict("EngineError", f"{type(exc).__name__}: {exc}"[:2000], node_id or None)
    with transaction.atomic():
        execution = Execution.objects.select_for_update().defer(*_UNUSED_RUN_COLUMNS).filter(pk=execution_id).first()
        if execution is None:
            return
        rt = Runtime(execution, plan_of(execution))
        if step_result is not None:
            step_id, expect, fields = step_result
            step = StepRun.objects.filter(pk=step_id, status=expect).first()
            if step is not None:
                for key, value in fields.items():
                    setattr(step, key, value)
                step.advanced = True
                try:
                    with transaction.atomic():
                        StepRun.objects.filter(pk=step_id).update(**{**fields, "advanced": True})
                except Exception:  # the result itself cannot be stored (e.g. a NUL byte): keep the failure
                    step.status, step.output = StepStatus.FAILED, None
                    StepRun.objects.filter(pk=step_id).update(status=StepStatus.FAILED, finished_at=timezone.now(), advanced=True, error=error)
                rt.event(_STEP_EVENT[step.status], node=step.node_id, scope=step.scope, step=step, payload={"attempt": step.attempt, **({"error": step.error} if step.error else {})})
        if execution.status in FINISHED_EXECUTION:
            _apply(rt.flush(), execution.pk)
            return
        rt.event("engine_error", node=node_id, payload={"error": error})
        try:
            with transaction.atomic():
                rt._finish_execution(ExecutionStatus.FAILED, error=error)
                effects = rt.flush()
        except Exception:
            # Cancelling the rest hit the same bug: end the run with the fewest writes possible.
            logger.exception("could not fail execution %s the usual way", execution_id)
            execution.refresh_from_db(fields=["last_seq", "status"])
            now = timezone.now()
            StepRun.objects.filter(execution_id=execution_id, status__in=list(ACTIVE_STEP)).update(status=StepStatus.CANCELLED, finished_at=now, advanced=True)
            execution.last_seq += 1
            event = ExecutionEvent.objects.create(execution=execution, seq=execution.last_seq, type="execution_failed", payload={"status": "failed", "error": error})
            Execution.objects.filter(pk=execution_id).update(status=ExecutionStatus.FAILED, finished_at=now, error=error, last_seq=execution.last_seq)
            publish.on_commit(execution_id, [event])
            return
        _apply(effects, execution.pk)


_STEP_EVENT = {StepStatus.COMPLETED: "step_completed", StepStatus.FAILED: "step_failed", StepStatus.CANCELLED: "step_cancelled", StepStatus.SKIPPED: "step_skipped"}


#
# Executing a step (inside a Celery task)
#


def _claim(step_id: int, worker: str, task_id: str) -> StepRun | None:
    """Move a pending step to running; None when it was not pending (duplicate delivery,
    cancelled, already run)."""
    now = timezone.now()
    with transaction.atomic():
        # Lock order: the run's row first, then its step rows, as finish_step, advance and cancel
        # do. Updating the step first (then bumping last_seq on the run) deadlocked against an
        # advance that holds the run and cancels this very step (for_each complete_when).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT e.id, e.status FROM executions_execution e JOIN executions_steprun s ON s.execution_id = e.id WHERE s.id = %s FOR UPDATE OF e",
                [step_id],
            )
            row = cursor.fetchone()
            # No step starts while its run is paused (resume re-dispatches what was left pending),
            # nor once its run has finished: nothing is written after the run's last event.
            if row is None or row[1] == ExecutionStatus.PAUSED or row[1] in FINISHED_EXECUTION:
                return None
        # The claim and the deadline (from the timeout the step carries, set at activation, so
        # claiming never parses the definition) in one conditional UPDATE that returns the row.
        claimed = list(StepRun.objects.raw(
            f"""UPDATE {_STEP_TABLE} SET status = 'running', started_at = %s, heartbeat_at = %s, worker = %s, task_id = %s,
                   deadline_at = CASE WHEN jsonb_typeof(state -> 'timeout') = 'number'
                                      THEN %s::timestamptz + (state ->> 'timeout')::float8 * interval '1 second' ELSE deadline_at END
                 WHERE id = %s AND status = 'pending' RETURNING *""",
            [now, now, worker, (task_id or "")[:64], now, step_id],
        ))
        if not claimed:
            return None
        step = claimed[0]
        payload = {"attempt": step.attempt, "worker": worker}
        with connection.cursor() as cursor:
            # The run's next sequence number and the step_started event in one statement.
            cursor.execute(
                f"""WITH seq AS (UPDATE {_RUN_TABLE} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq)
                    INSERT INTO {_EVENT_TABLE} (execution_id, seq, type, node_id, scope, step_id, payload, actor, created_at)
                    SELECT %s, seq.last_seq, 'step_started', %s, %s, %s, %s::jsonb, '', %s FROM seq RETURNING id, seq""",
                [step.execution_id, step.execution_id, step.node_id, step.scope, step.pk, json.dumps(payload), now],
            )
            event_id, seq = cursor.fetchone()
        event = ExecutionEvent(pk=event_id, execution_id=step.execution_id, seq=seq, type="step_started", node_id=step.node_id, scope=step.scope, step_id=step.pk, payload=payload, created_at=now)
        publish.on_commit(step.execution_id, [event])
    if step.deadline_at:
        _schedule_deadline(step)
    return step




_STEP_TABLE = StepRun._meta.db_table
_RUN_TABLE = Execution._meta.db_table
_EVENT_TABLE = ExecutionEvent._meta.db_table


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
        return StepStatus.FAILED, None, error_dict("UnknownActivity", f"no activity named {step.activity!r} is registered", step.node_id, retryable=False), ctx.logs
    try:
        output = spec.fn(step.input or {}, ctx)
        if ctx.variables and step.activity == "set":
            output = ctx.variables
        return StepStatus.COMPLETED, output, None, ctx.logs
    except StepCancelled:
        return StepStatus.CANCELLED, None, None, ctx.logs
    except ActivityError as exc:
        return StepStatus.FAILED, None, error_dict(exc.type, exc.message, step.node_id, retryable=exc.retryable, **({"details": redact(exc.details)} if exc.details else {})), ctx.logs
    except Exception as exc:  # an activity's own bug is a step failure, not a worker crash
        logger.exception("activity %s failed", step.activity)
        return StepStatus.FAILED, None, error_dict(type(exc).__name__, str(exc) or type(exc).__name__, step.node_id), ctx.logs


def finish_step(step_id: int, status: str, output: Any = None, error: dict | None = None, logs: list | None = None, *, expect: str = StepStatus.RUNNING, advance_now: bool = True, allow_inline: bool = False, sticky: Sticky | None = None) -> list[StepRun]:
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
            step = (
                StepRun.objects.select_related("execution").select_for_update(of=("execution",))
                .defer(*(f"execution__{name}" for name in _UNUSED_RUN_COLUMNS)).filter(pk=step_id).first()
            )
            if step is None or step.status != expect:
                return []
            blame.fallback = step.node_id
            execution = step.execution
            for key, value in fields.items():
                setattr(step, key, value)
            rt = Runtime(execution, plan_of(execution), allow_inline=allow_inline, sticky=sticky)
            blame.runtime = rt
            rt.event(_STEP_EVENT[status], node=step.node_id, scope=step.scope, step=step, payload=_step_payload(step, status, error))
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
    updated = StepRun.objects.filter(pk=step_id, status=StepStatus.PENDING).exclude(execution__status=ExecutionStatus.PAUSED).update(
        status=StepStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker or _hostname(), task_id=(task_id or "")[:64]
    )
    if not updated:
        return
    step = StepRun.objects.get(pk=step_id)
    if not step.in_chord:  # a retry of a chord member runs the ordinary way
        StepRun.objects.filter(pk=step_id).update(status=StepStatus.PENDING, started_at=None)
        execute_step(step_id, worker=worker, task_id=task_id)
        return
    timeout = step.state.get("timeout") if isinstance(step.state, dict) else None
    if timeout:
        step.deadline_at = now + timedelta(seconds=float(timeout))
        StepRun.objects.filter(pk=step_id).update(deadline_at=step.deadline_at)
        from .. import tasks

        tasks.check_deadline.apply_async((step.pk,), countdown=float(timeout) + 0.05)
    with running(step_id):
        status, output, error, logs = _run_activity(step)
        if status == StepStatus.CANCELLED:
            return
        StepRun.objects.filter(pk=step_id, status=StepStatus.RUNNING).update(**_result_fields(status, output, error, logs))


@dataclass
class Sticky:
    """A worker's offer to run the next ready step itself (Temporal's sticky queues): the advance
    inserts it already claimed by `worker`, and the worker runs it right after commit."""

    worker: str
    queue: str = ""


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
            step = current if current.status == StepStatus.RUNNING else _claim(current.pk, worker, f"inline-{current.pk}")
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
                step.pk, status, output, error, logs, advance_now=not step.in_chord,
                sticky=Sticky(worker) if within_budget else None,
            )
        if not within_budget and follow:
            # Over budget: the rest goes through the queue like any step.
            from .. import tasks

            pending = [s.pk for s in follow]
            StepRun.objects.filter(pk__in=pending).update(dispatched_at=timezone.now())
            for rest in pending:
                tasks.run_step.apply_async((rest,))
            continue
        queue.extend(follow)


def _schedule_deadline(step: StepRun) -> None:
    from .. import tasks

    countdown = max(0.0, (step.deadline_at - timezone.now()).total_seconds()) + 0.05
    tasks.check_deadline.apply_async((step.pk,), countdown=countdown)


#
# Timers, deadlines, the reaper
#


def _finish_with_retries(step_id: int, status, output, error, logs, *, advance_now: bool, sticky: Sticky | None = None) -> list[StepRun]:
    """Record a result through a transient database error (a deadlock victim, a restarted
    server). When the database stays away longer than the retries, the step is left
    `running`: this process stops heartbeating it, so the reaper gives it a new attempt."""
    from django.db import close_old_connections

    delays = (0.2, 0.5, 1.0, 2.0, 4.0)
    for attempt, delay in enumerate(delays, start=1):
        try:
            return finish_step(step_id, status, output, error, logs, advance_now=advance_now, allow_inline=True, sticky=sticky)
        except DatabaseError:
            if attempt == len(delays):
                logger.error("could not record the result of step %s; the reaper will retry it", step_id, exc_info=True)
                return []
            logger.warning("recording step %s failed (attempt %s); retrying", step_id, attempt, exc_info=True)
            close_old_connections()
            time.sleep(delay)
    return []


def fire_timer(timer_id: int) -> None:
    """A timer is due: claim it once, then act on its step."""
    now = timezone.now()
    timer = Timer.objects.filter(pk=timer_id).select_related("step").first()
    if timer is None or timer.fired_at is not None:
        return
    if timer.fire_at > now + timedelta(milliseconds=5):
        return  # early delivery; the sweep or a later message fires it
    if not Timer.objects.filter(pk=timer_id, fired_at__isnull=True).update(fired_at=now):
        return
    step = timer.step
    if step is None:
        return
    if timer.kind == Timer.Kind.TIMER:
        finish_step(step.pk, StepStatus.COMPLETED, {"fired_at": now.isoformat()}, expect=StepStatus.WAITING)
    elif timer.kind == Timer.Kind.SIGNAL_TIMEOUT:
        from .signals import resume_waiting_step

        output = {"decision": "expired"} if step.node_type == "approval" else {"timed_out": True}
        resume_waiting_step(step.pk, output, actor="timer", timed_out=True)
    elif timer.kind == Timer.Kind.RETRY:
        if StepRun.objects.filter(pk=step.pk, status=StepStatus.SCHEDULED).update(status=StepStatus.PENDING, dispatched_at=now):
            from .. import tasks

            with transaction.atomic():
                seq = _next_seq(step.execution_id)
                event = ExecutionEvent.objects.create(execution_id=step.execution_id, seq=seq, type="step_scheduled", node_id=step.node_id, scope=step.scope, step=step, payload={"attempt": step.attempt})
                publish.on_commit(step.execution_id, [event])
            tasks.run_step.apply_async((step.pk,))


def check_deadline(step_id: int) -> None:
    """Fail a running step that is past its timeout (its worker may still be busy; its
    late result is ignored because the step is no longer running)."""
    step = StepRun.objects.filter(pk=step_id, status=StepStatus.RUNNING).only("deadline_at", "node_id").first()
    if step is None or step.deadline_at is None or step.deadline_at > timezone.now():
        return
    seconds = None
    if step.deadline_at and step.started_at:
        seconds = round((step.deadline_at - step.started_at).total_seconds(), 3)
    finish_step(step_id, StepStatus.FAILED, error=error_dict("StepTimeout", f"the step did not finish within its timeout ({seconds} s)", step.node_id))


#
# Heartbeats: the steps this process is running now
#

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


def sweep() -> dict[str, int]:
    """The periodic safety net: re-dispatch lost work, fire overdue timers, reap steps of dead
    workers, advance runs whose advance message was lost, fail runs that hold nothing that
    could move them on. Safe to run anywhere, any time; one sweeper at a time (advisory lock).

    Each run is handled in its own transaction and try block: one poisoned run is logged
    and skipped, and never stops the recovery of the others.
    """
    counts = {"reaped": 0, "timed_out": 0, "timers": 0, "redispatched": 0, "advanced": 0, "stuck": 0, "errors": 0}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SWEEP_LOCK_ID])
        if not cursor.fetchone()[0]:
            return counts
    try:
        _sweep(counts)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SWEEP_LOCK_ID])
    return counts


def _each(counts: dict[str, int], key: str, items, action) -> None:
    for item in items:
        try:
            action(item)
            counts[key] += 1
        except _TRANSIENT:
            raise
        except Exception:
            counts["errors"] += 1
            logger.exception("sweep: %s of %s failed; going on with the others", key, item)


def _sweep(counts: dict[str, int]) -> None:
    from .. import tasks

    now = timezone.now()
    grace = timedelta(seconds=settings.WB_STEP_HEARTBEAT_GRACE)
    lost_workers = StepRun.objects.filter(status=StepStatus.RUNNING, heartbeat_at__lt=now - grace).only("id", "node_id", "worker")[:500]
    _each(counts, "reaped", list(lost_workers), lambda step: finish_step(
        step.pk, StepStatus.FAILED, error=error_dict(WORKER_LOST, f"worker {step.worker or '?'} stopped answering while running this step", step.node_id)
    ))
    _each(counts, "timed_out", list(StepRun.objects.filter(status=StepStatus.RUNNING, deadline_at__lt=now).values_list("id", flat=True)[:500]), check_deadline)
    _each(counts, "timers", list(Timer.objects.filter(fired_at__isnull=True, fire_at__lte=now).values_list("id", flat=True)[:500]), fire_timer)
    redispatch_after = timedelta(seconds=getattr(settings, "WB_REDISPATCH_AFTER", 60))
    lost = StepRun.objects.filter(status=StepStatus.PENDING).filter(
        Q(dispatched_at__lt=now - redispatch_after) | Q(dispatched_at__isnull=True, created_at__lt=now - timedelta(seconds=5))
    ).exclude(execution__status__in=list(FINISHED_EXECUTION) + [ExecutionStatus.PAUSED])

    def redispatch(step_id: int) -> None:
        StepRun.objects.filter(pk=step_id).update(dispatched_at=now)
        tasks.run_step.apply_async((step_id,))

    _each(counts, "redispatched", list(lost.values_list("id", flat=True)[:500]), redispatch)
    stalled = (
        StepRun.objects.filter(advanced=False, finished_at__lt=now - timedelta(seconds=3))
        .exclude(execution__status=ExecutionStatus.PAUSED)
        .values_list("execution_id", flat=True)
        .distinct()
    )
    _each(counts, "advanced", list(stalled[:200]), advance)
    # Parents still waiting for children that have finished (the message was lost).
    from .children import child_finished

    orphans = StepRun.objects.filter(status=StepStatus.WAITING, node_type__in=["child_workflow", "await_child"], created_at__lt=now - timedelta(seconds=3)).values_list("state", flat=True)[:500]
    child_ids = [state.get("child_id") for state in orphans if isinstance(state, dict) and state.get("child_id")]
    finished_children = Execution.objects.filter(pk__in=child_ids, status__in=[s for s in FINISHED_EXECUTION if s != ExecutionStatus.CONTINUED]).values_list("pk", flat=True)
    _each(counts, "advanced", list(finished_children), child_finished)
    _each(counts, "stuck", stuck_executions(now), _fail_stuck)


def stuck_executions(now=None) -> list[int]:
    """Runs that are not finished yet hold nothing that could move them on: no active step
    (running, pending, scheduled, waiting) and no finished step still to take into account.
    The invariant says there are none; the sweep fails any it finds."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT e.id FROM executions_execution e
            WHERE e.status IN ('running', 'waiting') AND e.created_at < %s
              AND NOT EXISTS (
                SELECT 1 FROM executions_steprun s WHERE s.execution_id = e.id
                  AND (s.status IN ('scheduled', 'pending', 'running', 'waiting') OR NOT s.advanced))
            ORDER BY e.id LIMIT 100
            """,
            [now - timedelta(seconds=STUCK_AFTER_SECONDS)],
        )
        return [row[0] for row in cursor.fetchall()]


def _fail_stuck(execution_id: int) -> None:
    _fail_on_engine_error(execution_id, RuntimeError("the run had no running step, timer, or node waiting for a signal, approval or child"))


#
# Operator actions
#


def cancel_execution(execution: Execution, *, acting_user=None, reason: str = "cancelled by a user") -> bool:
    """Cancel a run: running steps are revoked, the run ends `cancelled`. False if it had finished."""
    with transaction.atomic():
        locked = Execution.objects.select_for_update().defer(*_UNUSED_RUN_COLUMNS).get(pk=execution.pk)
        if locked.status in FINISHED_EXECUTION:
            return False
        rt = Runtime(locked, plan_of(locked))
        actor = acting_user.get_username() if getattr(acting_user, "is_authenticated", False) else ""
        rt.cancel(actor=actor, reason=reason)
        effects = rt.flush()
        _apply(effects, locked.pk)
    execution.refresh_from_db()
    return True


def pause_execution(execution: Execution, *, actor: str = "") -> bool:
    """Pause a running run: steps already running finish, nothing new starts. False if not running."""
    with transaction.atomic():
        locked = Execution.objects.select_for_update().get(pk=execution.pk)
        if locked.status not in (ExecutionStatus.RUNNING, ExecutionStatus.WAITING):
            return False
        locked.status = ExecutionStatus.PAUSED
        _record_run_event(locked, "execution_paused", {}, actor)
    execution.refresh_from_db()
    return True


def resume_execution(execution: Execution, *, actor: str = "") -> bool:
    """Resume a paused run: what finished meanwhile is taken into account, held steps start."""
    from .. import tasks

    with transaction.atomic():
        locked = Execution.objects.select_for_update().get(pk=execution.pk)
        if locked.status != ExecutionStatus.PAUSED:
            return False
        locked.status = ExecutionStatus.RUNNING
        _record_run_event(locked, "execution_resumed", {}, actor)
        held = list(StepRun.objects.filter(execution=locked, status=StepStatus.PENDING).values_list("pk", flat=True))
        StepRun.objects.filter(pk__in=held).update(dispatched_at=timezone.now())

        def redispatch() -> None:
            for step_id in held:
                tasks.run_step.apply_async((step_id,))

        transaction.on_commit(redispatch)
    advance(execution.pk)
    execution.refresh_from_db()
    return True


def _record_run_event(execution: Execution, type_: str, payload: dict, actor: str) -> None:
    execution.last_seq += 1
    event = ExecutionEvent.objects.create(execution=execution, seq=execution.last_seq, type=type_, payload=payload, actor=actor)
    execution.save(update_fields=["status", "last_seq"])
    publish.on_commit(execution.pk, [event])


def resume_waiting_step(step_id: int, output: dict, *, actor: str = "") -> bool:
    """Finish a waiting approval (output {"decision", "comment", "by"}) or signal_wait step.
    False when it is no longer waiting. See engine/signals.py."""
    from .signals import resume_waiting_step as resume

    return resume(step_id, output, actor=actor)


def retry_execution(execution: Execution, *, acting_user=None) -> Execution:
    """A new run of the same workflow with the same input."""
    return start_execution(execution.workflow, execution.input, acting_user=acting_user, trigger="retry", retry_of=execution)


def retry_with_changes(execution: Execution, *, acting_user=None, input: dict | None = None, node_params: dict[str, dict] | None = None) -> Execution:
    """Re-run a failed run from where it failed, keeping the top-level steps that completed.

    `input` replaces the run input; `node_params` replaces the params of the named
    activity nodes (in this new run only; the workflow is not changed). Completed
    steps are copied with their outputs, and the variables are those the failed run
    ended with; everything after them runs again.
    Raises DefinitionError / InputError like start_execution.
    """
    import copy

    definition = copy.deepcopy(execution.definition)
    if node_params:
        found = set()

        def patch(nodes: list) -> None:
            for node in nodes:
                if node.get("id") in node_params:
                    node["params"] = node_params[node["id"]]
                    found.add(node["id"])
                for branch in node.get("branches", []) or []:
                    patch(branch.get("nodes", []))
                if isinstance(node.get("body"), dict):
                    patch(node["body"].get("nodes", []))

        patch(definition.get("nodes", []))
        missing = set(node_params) - found
        if missing:
            raise InputError("node_params", f"no node with id {', '.join(sorted(missing))} in this workflow")
    plan = compile_definition(definition)
    new_input = check_input(definition, execution.input if input is None else input)
    kept = [
        s for s in StepRun.objects.filter(execution=execution, scope="").order_by("id")
        if s.status in (StepStatus.COMPLETED, StepStatus.SKIPPED)
    ]
    latest: dict[str, StepRun] = {}
    for step in kept:
        latest[step.node_id] = step
    with transaction.atomic():
        new = Execution.objects.create(
            workflow=execution.workflow, definition=definition, input=new_input, variables=dict(execution.variables),
            trigger="retry", retry_of=execution, status=ExecutionStatus.RUNNING,
            created_by=acting_user if getattr(acting_user, "is_authenticated", False) else None,
        )
        rt = Runtime(new, plan)
        rt.set_ex(started_at=rt.now)
        rt.event("execution_started", payload={"input": new_input, "trigger": "retry", "variables": new.variables, "retry_of": execution.pk, "kept_steps": sorted(latest)})
        copies = []
        for step in latest.values():
            copies.append(rt.new_step("", plan.node(step.node_id), status=step.status, output=step.output, input=step.input, started_at=step.started_at, finished_at=step.finished_at, advanced=False, state={"kept_from": step.pk}))
            rt.event("step_kept", node=step.node_id, step=copies[-1], payload={"from_execution": execution.pk, "output": step.output})
        if not copies:
            rt.start_scope("", plan.root.id)
        for step in copies:
            if new.status in FINISHED_EXECUTION:
                break
            step.advanced = False
            # Propagate as if the kept step had just finished; only nodes without a step run start.
            rt.on_finished(step)
        effects = rt.flush()
        _apply(effects, new.pk)
    return new


def retry_failed(execution: Execution, *, acting_user=None) -> Execution:
    """Re-run only the failed, blocked and cancelled items of a finished run's dynamic nodes.

    Top-level steps before them are kept (as in retry_with_changes); items that
    completed keep their results. Raises InputError when the run has no such items.
    """
    from .nodes.dynamic import snapshot

    seeds: dict[str, dict] = {}
    for step in StepRun.objects.filter(execution=execution, node_type="dynamic").order_by("id"):
        state = snapshot(step)
        status = state.get("status", {})
        # In a finished run, an item still marked queued or running was cut short (the run was
        # cancelled or failed around it): it is retried like a cancelled one.
        if any(s != "completed" for s in status.values()):
            seeds[step.node_id] = {i: state.get("results", {}).get(i) for i, s in status.items() if s == "completed"}
    if not seeds:
        raise InputError("execution", "this run has no failed or blocked items to retry")
    if execution.status not in FINISHED_EXECUTION:
        raise InputError("execution", f"the run is still {execution.status}")
    plan = compile_definition(execution.definition)
    kept = {}
    for step in StepRun.objects.filter(execution=execution, scope="").order_by("id"):
        if step.status in (StepStatus.COMPLETED, StepStatus.SKIPPED) and step.node_id not in seeds:
            kept[step.node_id] = step
    # Only steps before the dynamic nodes are kept: anything after them runs again.
    with transaction.atomic():
        new = Execution.objects.create(
            workflow=execution.workflow, definition=execution.definition, input=execution.input,
            variables=dict(execution.variables), trigger="retry", retry_of=execution, status=ExecutionStatus.RUNNING,
            created_by=acting_user if getattr(acting_user, "is_authenticated", False) else None,
        )
        rt = Runtime(new, plan)
        rt.seeds = seeds
        rt.set_ex(started_at=rt.now)
        rt.event("execution_started", payload={"input": new.input, "trigger": "retry", "variables": new.variables, "retry_of": execution.pk, "retry_failed_items": {k: sorted(set(v)) for k, v in seeds.items()}})
        before = _upstream_of(plan, set(seeds))
        copies = []
        for node_id, step in kept.items():
            if node_id not in before:
                continue
            copies.append(rt.new_step("", plan.node(node_id), status=step.status, output=step.output, input=step.input, started_at=step.started_at, finished_at=step.finished_at, advanced=False, state={"kept_from": step.pk}))
            rt.event("step_kept", node=node_id, step=copies[-1], payload={"from_execution": execution.pk})
        if not copies:
            rt.start_scope("", plan.root.id)
        for step in copies:
            if new.status in FINISHED_EXECUTION:
                break
            rt.on_finished(step)
        effects = rt.flush()
        _apply(effects, new.pk)
    return new


def _upstream_of(plan, targets: set[str]) -> set[str]:
    """Top-level nodes from which one of `targets` can be reached (its ancestors)."""
    preds: dict[str, set[str]] = {}
    for node in plan.nodes.values():
        if node.scope == "":
            for succ in node.successors + ([node.on_error] if node.on_error else []):
                preds.setdefault(succ, set()).add(node.id)
    seen: set[str] = set()
    todo = list(targets)
    while todo:
        for pred in preds.get(todo.pop(), ()):
            if pred not in seen:
                seen.add(pred)
                todo.append(pred)
    return seen
