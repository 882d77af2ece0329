"""The safety net: timers, step deadlines, and the periodic sweep that reaps steps of dead
workers, re-dispatches lost work, advances stalled runs and fails runs left with nothing to
move them on, each run on its own."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from ..choices import FINISHED_EXECUTION, ExecutionStatus, StepStatus
from ..models import Execution, ExecutionEvent, StepRun, Timer
from . import publish
from .advancing import advance
from .children import child_finished
from .dispatch import queue_of, send_steps
from .failures import _TRANSIENT, _fail_on_engine_error
from .runtime import WORKER_LOST, error_dict
from .signals import resume_waiting_step
from .steps import _next_seq, finish_step

logger = logging.getLogger("workflow.engine")


# A run with nothing running, waiting or to advance for this long is failed by the sweep.
STUCK_AFTER_SECONDS = 30


SWEEP_LOCK_ID = 7_312_001


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
        output = {"decision": "expired"} if step.node_type == "approval" else {"timed_out": True}
        resume_waiting_step(step.pk, output, actor="timer", timed_out=True)
    elif timer.kind == Timer.Kind.RETRY:
        if StepRun.objects.filter(pk=step.pk, status=StepStatus.SCHEDULED).update(
            status=StepStatus.PENDING, dispatched_at=now
        ):
            with transaction.atomic():
                seq = _next_seq(step.execution_id)
                event = ExecutionEvent.objects.create(
                    execution_id=step.execution_id,
                    seq=seq,
                    type="step_scheduled",
                    node_id=step.node_id,
                    scope=step.scope,
                    step=step,
                    payload={"attempt": step.attempt},
                )
                publish.on_commit(step.execution_id, [event])
            send_steps([step.pk], queue=queue_of(step.execution_id))


def check_deadline(step_id: int) -> None:
    """Fail a running step that is past its timeout (its worker may still be busy; its
    late result is ignored because the step is no longer running)."""
    step = StepRun.objects.filter(pk=step_id, status=StepStatus.RUNNING).only("deadline_at", "node_id").first()
    if step is None or step.deadline_at is None or step.deadline_at > timezone.now():
        return
    seconds = None
    if step.deadline_at and step.started_at:
        seconds = round((step.deadline_at - step.started_at).total_seconds(), 3)
    finish_step(
        step_id,
        StepStatus.FAILED,
        error=error_dict("StepTimeout", f"the step did not finish within its timeout ({seconds} s)", step.node_id),
    )


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

    now = timezone.now()
    grace = timedelta(seconds=settings.WB_STEP_HEARTBEAT_GRACE)
    lost_workers = StepRun.objects.filter(status=StepStatus.RUNNING, heartbeat_at__lt=now - grace).only(
        "id", "node_id", "worker"
    )[:500]
    _each(
        counts,
        "reaped",
        list(lost_workers),
        lambda step: finish_step(
            step.pk,
            StepStatus.FAILED,
            error=error_dict(
                WORKER_LOST, f"worker {step.worker or '?'} stopped answering while running this step", step.node_id
            ),
        ),
    )
    _each(
        counts,
        "timed_out",
        list(StepRun.objects.filter(status=StepStatus.RUNNING, deadline_at__lt=now).values_list("id", flat=True)[:500]),
        check_deadline,
    )
    _each(
        counts,
        "timers",
        list(Timer.objects.filter(fired_at__isnull=True, fire_at__lte=now).values_list("id", flat=True)[:500]),
        fire_timer,
    )
    redispatch_after = timedelta(seconds=settings.WB_REDISPATCH_AFTER)
    lost = (
        StepRun.objects.filter(status=StepStatus.PENDING)
        .filter(
            Q(dispatched_at__lt=now - redispatch_after)
            | Q(dispatched_at__isnull=True, created_at__lt=now - timedelta(seconds=5))
        )
        .exclude(execution__status__in=list(FINISHED_EXECUTION) + [ExecutionStatus.PAUSED])
    )

    def redispatch(lost_step: tuple[int, str]) -> None:
        step_id, queue = lost_step
        StepRun.objects.filter(pk=step_id).update(dispatched_at=now)
        send_steps([step_id], queue=queue)

    _each(counts, "redispatched", list(lost.values_list("id", "execution__queue")[:500]), redispatch)
    stalled = (
        StepRun.objects.filter(advanced=False, finished_at__lt=now - timedelta(seconds=3))
        .exclude(execution__status=ExecutionStatus.PAUSED)
        .values_list("execution_id", flat=True)
        .distinct()
    )
    _each(counts, "advanced", list(stalled[:200]), advance)
    # Parents still waiting for children that have finished (the message was lost).
    orphans = StepRun.objects.filter(
        status=StepStatus.WAITING,
        node_type__in=["child_workflow", "await_child"],
        created_at__lt=now - timedelta(seconds=3),
    ).values_list("state", flat=True)[:500]
    child_ids = [state["child_id"] for state in orphans if isinstance(state, dict) and state.get("child_id")]
    finished_children = Execution.objects.filter(
        pk__in=child_ids, status__in=[s for s in FINISHED_EXECUTION if s != ExecutionStatus.CONTINUED]
    ).values_list("pk", flat=True)
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
    _fail_on_engine_error(
        execution_id,
        RuntimeError("the run had no running step, timer, or node waiting for a signal, approval or child"),
    )
