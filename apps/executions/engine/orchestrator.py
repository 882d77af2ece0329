"""Starting, advancing, finishing, cancelling runs; executing steps; the sweep.

Every state change happens inside one transaction holding the execution's row
lock (SELECT … FOR UPDATE); Celery messages, revocations and live updates go out
after commit. Advancing twice is harmless: a finished step is taken into account
once (its `advanced` flag), and a step runs only if it can be claimed with a
conditional UPDATE from `pending`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.workflows.definition.plan import Plan
from apps.workflows.definition.registry import get_activity
from apps.workflows.definition.validator import compile_definition

from ..activities import ActivityContext, ActivityError, StepCancelled
from ..choices import FINISHED_EXECUTION, ExecutionStatus, StepStatus
from ..models import Execution, ExecutionEvent, StepRun, Timer
from . import publish
from .redaction import redact
from .runtime import WORKER_LOST, Runtime, SideEffects, error_dict

logger = logging.getLogger("workflow.engine")

# A worker runs cheap local steps inline for at most this long before handing the rest to the queue.
INLINE_BUDGET_SECONDS = 0.5
INLINE_BUDGET_STEPS = 200
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
    if not (effects.dispatch or effects.chords or effects.revoke or effects.timers or effects.events):
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
    from apps.metrics.correlation import get_correlation_id

    correlation_id = correlation_id or get_correlation_id()  # the HTTP request's or task's id
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

    Returns local steps the caller (a worker) should run inline.
    """
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
        return _advance_inbox(Runtime(execution, plan_of(execution), allow_inline=allow_inline), inbox)


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
        updated = StepRun.objects.filter(pk=step_id, status=StepStatus.PENDING).update(
            status=StepStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker, task_id=task_id[:64] if task_id else ""
        )
        if not updated:
            return None
        step = StepRun.objects.get(pk=step_id)
        # The step carries its timeout (set at activation), so claiming never parses the definition.
        timeout = step.state.get("timeout") if isinstance(step.state, dict) else None
        if timeout:
            step.deadline_at = now + timedelta(seconds=float(timeout))
            StepRun.objects.filter(pk=step_id).update(deadline_at=step.deadline_at)
        seq = _next_seq(step.execution_id)
        event = ExecutionEvent.objects.create(
            execution_id=step.execution_id, seq=seq, type="step_started", node_id=step.node_id, scope=step.scope, step=step,
            payload={"attempt": step.attempt, "worker": worker},
        )
        publish.on_commit(step.execution_id, [event])
    if step.deadline_at:
        from .. import tasks

        countdown = max(0.0, (step.deadline_at - timezone.now()).total_seconds()) + 0.05
        tasks.check_deadline.apply_async((step.pk,), countdown=countdown)
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


def finish_step(step_id: int, status: str, output: Any = None, error: dict | None = None, logs: list | None = None, *, expect: str = StepStatus.RUNNING, advance_now: bool = True, allow_inline: bool = False) -> list[StepRun]:
    """Record a step's result and advance its run, in one transaction under the run's lock.

    Does nothing when the step is no longer `expect` (cancelled or timed out meanwhile).
    Returns local steps to run inline.
    """
    with transaction.atomic():
        step = StepRun.objects.filter(pk=step_id).first()
        if step is None:
            return []
        execution = Execution.objects.select_for_update().defer(*_UNUSED_RUN_COLUMNS).get(pk=step.execution_id)
        fields = _result_fields(status, output, error, logs)
        updated = StepRun.objects.filter(pk=step_id, status=expect).update(**fields)
        if not updated:
            return []
        # The row now holds exactly what was read plus `fields` (the conditional update above
        # is the only writer that matters: others change heartbeat/deadline columns only).
        for key, value in fields.items():
            setattr(step, key, value)
        event_type = {StepStatus.COMPLETED: "step_completed", StepStatus.FAILED: "step_failed", StepStatus.CANCELLED: "step_cancelled"}[status]
        payload: dict[str, Any] = {"attempt": step.attempt}
        if status == StepStatus.COMPLETED:
            payload["output"] = step.output
            payload["duration_ms"] = step.duration_ms
        elif error:
            payload["error"] = error
        # The step's event goes out with the advance's own writes: one INSERT of events and one
        # UPDATE of the run for both.
        rt = Runtime(execution, plan_of(execution), allow_inline=allow_inline)
        rt.event(event_type, node=step.node_id, scope=step.scope, step=step, payload=payload)
        if not advance_now or execution.status in FINISHED_EXECUTION or execution.status == ExecutionStatus.PAUSED:
            _apply(rt.flush(), execution.pk)
            return []
        return _advance_inbox(rt, _inbox(execution))


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
    status, output, error, logs = _run_activity(step)
    if status == StepStatus.CANCELLED:
        return
    StepRun.objects.filter(pk=step_id, status=StepStatus.RUNNING).update(**_result_fields(status, output, error, logs))


def execute_step(step_id: int, *, worker: str = "", task_id: str = "") -> None:
    """Run one step (the body of the Celery task), then the local steps it makes ready."""
    worker = worker or _hostname()
    queue = [step_id]
    started = time.monotonic()
    ran = 0
    while queue:
        current = queue.pop(0)
        if ran and (time.monotonic() - started > INLINE_BUDGET_SECONDS or ran >= INLINE_BUDGET_STEPS):
            # Over budget: the rest goes through the queue like any step.
            from .. import tasks

            StepRun.objects.filter(pk__in=[current, *queue]).update(dispatched_at=timezone.now())
            for rest in [current, *queue]:
                tasks.run_step.apply_async((rest,))
            return
        step = _claim(current, worker, task_id if current == step_id else f"inline-{current}")
        ran += 1
        if step is None:
            continue
        status, output, error, logs = _run_activity(step)
        if status == StepStatus.CANCELLED:
            continue  # whoever cancelled it has recorded that
        inline = _finish_with_retries(step.pk, status, output, error, logs, advance_now=not step.in_chord)
        queue.extend(s.pk for s in inline)


#
# Timers, deadlines, the reaper
#


def _finish_with_retries(step_id: int, status, output, error, logs, *, advance_now: bool) -> list[StepRun]:
    """Record a result even through a transient database error (a deadlock victim, a
    restarted server): a step left `running` by a live worker would otherwise wait for
    its timeout, since the worker's heartbeat keeps it fresh."""
    from django.db import DatabaseError, close_old_connections

    for attempt in range(5):
        try:
            return finish_step(step_id, status, output, error, logs, advance_now=advance_now, allow_inline=True)
        except DatabaseError:
            if attempt == 4:
                raise
            logger.warning("recording step %s failed (attempt %s); retrying", step_id, attempt + 1, exc_info=True)
            close_old_connections()
            time.sleep(0.2 * (attempt + 1))
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


def heartbeat(worker: str) -> int:
    """Mark the running steps of `worker` alive."""
    return StepRun.objects.filter(status=StepStatus.RUNNING, worker=worker).update(heartbeat_at=timezone.now())


def sweep() -> dict[str, int]:
    """The periodic safety net: re-dispatch lost work, fire overdue timers, reap steps of dead
    workers, advance runs whose advance message was lost. Safe to run anywhere, any time;
    one sweeper at a time (advisory lock)."""
    counts = {"reaped": 0, "timed_out": 0, "timers": 0, "redispatched": 0, "advanced": 0}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SWEEP_LOCK_ID])
        if not cursor.fetchone()[0]:
            return counts
    try:
        from .. import tasks

        now = timezone.now()
        grace = timedelta(seconds=settings.WB_STEP_HEARTBEAT_GRACE)
        for step in StepRun.objects.filter(status=StepStatus.RUNNING, heartbeat_at__lt=now - grace).only("id", "node_id", "worker")[:500]:
            finish_step(step.pk, StepStatus.FAILED, error=error_dict(WORKER_LOST, f"worker {step.worker or '?'} stopped answering while running this step", step.node_id))
            counts["reaped"] += 1
        for step_id in StepRun.objects.filter(status=StepStatus.RUNNING, deadline_at__lt=now).values_list("id", flat=True)[:500]:
            check_deadline(step_id)
            counts["timed_out"] += 1
        for timer_id in Timer.objects.filter(fired_at__isnull=True, fire_at__lte=now).values_list("id", flat=True)[:500]:
            fire_timer(timer_id)
            counts["timers"] += 1
        redispatch_after = timedelta(seconds=getattr(settings, "WB_REDISPATCH_AFTER", 60))
        lost = StepRun.objects.filter(status=StepStatus.PENDING).filter(
            Q(dispatched_at__lt=now - redispatch_after) | Q(dispatched_at__isnull=True, created_at__lt=now - timedelta(seconds=5))
        ).exclude(execution__status__in=list(FINISHED_EXECUTION) + [ExecutionStatus.PAUSED])
        for step_id in lost.values_list("id", flat=True)[:500]:
            StepRun.objects.filter(pk=step_id).update(dispatched_at=now)
            tasks.run_step.apply_async((step_id,))
            counts["redispatched"] += 1
        stalled = (
            StepRun.objects.filter(advanced=False, finished_at__lt=now - timedelta(seconds=3))
            .exclude(execution__status=ExecutionStatus.PAUSED)
            .values_list("execution_id", flat=True)
            .distinct()
        )
        for execution_id in list(stalled)[:200]:
            advance(execution_id)
            counts["advanced"] += 1
        # Parents still waiting for children that have finished (the message was lost).
        from .children import child_finished

        orphans = StepRun.objects.filter(status=StepStatus.WAITING, node_type__in=["child_workflow", "await_child"], created_at__lt=now - timedelta(seconds=3)).values_list("state", flat=True)[:500]
        child_ids = [state.get("child_id") for state in orphans if isinstance(state, dict) and state.get("child_id")]
        for child_id in Execution.objects.filter(pk__in=child_ids, status__in=[s for s in FINISHED_EXECUTION if s != ExecutionStatus.CONTINUED]).values_list("pk", flat=True):
            child_finished(child_id)
            counts["advanced"] += 1
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SWEEP_LOCK_ID])
    return counts


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
    seeds: dict[str, dict] = {}
    for step in StepRun.objects.filter(execution=execution, node_type="dynamic").order_by("id"):
        status = step.state.get("status", {})
        # In a finished run, an item still marked queued or running was cut short (the run was
        # cancelled or failed around it): it is retried like a cancelled one.
        if any(s != "completed" for s in status.values()):
            seeds[step.node_id] = {i: step.state.get("results", {}).get(i) for i, s in status.items() if s == "completed"}
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
