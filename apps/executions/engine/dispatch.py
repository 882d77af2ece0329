"""Compiled plans of runs, and the side effects of a committed advance: Celery dispatch (single
steps, groups, chords), revocations, deadlines, timers and live updates, all after commit."""

from __future__ import annotations

import logging
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TypedDict

from celery import chord, group
from django.db import transaction
from django.utils import timezone

from apps.workflows.definition.plan import Plan
from apps.workflows.definition.validator import compile_definition

from ..models import Execution, StepRun
from . import messages, publish
from .runtime import SideEffects

logger = logging.getLogger("workflow.engine")


def _hostname() -> str:
    return f"{socket.gethostname()}"


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


@dataclass
class Sticky:
    """A worker's offer to run the next ready step itself (Temporal's sticky queues): the advance
    inserts it already claimed by `worker`, and the worker runs it right after commit."""

    worker: str
    queue: str = ""


class _Routing(TypedDict, total=False):
    queue: str


def _routing(queue: str) -> _Routing:
    """Celery options sending a task to the run's queue (none: the default queue)."""
    return {"queue": queue} if queue else {}


def send_steps(step_ids: list[int], *, queue: str = "") -> None:
    """Send pending steps to the workers (on the run's queue), outside any advance."""
    for step_id in step_ids:
        messages.send(messages.RUN_STEP, step_id, **_routing(queue))


def queue_of(execution_id: int) -> str:
    return Execution.objects.filter(pk=execution_id).values_list("queue", flat=True).first() or ""


def _apply(effects: SideEffects, execution_id: int) -> None:
    """Register the side effects of a committed advance (runs them after commit)."""
    if not (
        effects.dispatch or effects.chords or effects.revoke or effects.timers or effects.events or effects.deadlines
    ):
        return

    def send() -> None:
        # The steps carry their dispatch time from the advance that created them.
        singles = effects.dispatch
        if singles:
            if len(singles) == 1:
                messages.send(messages.RUN_STEP, singles[0].pk, **_routing(effects.queue))
            else:
                group(messages.task(messages.RUN_STEP, s.pk, **_routing(effects.queue)) for s in singles).apply_async(
                    **_routing(effects.queue)
                )
        for batch in effects.chords:
            chord(
                [messages.task(messages.RUN_CHORD_STEP, s.pk, **_routing(effects.queue)) for s in batch],
                messages.task(messages.ADVANCE, execution_id, **_routing(effects.queue)),
            ).apply_async(**_routing(effects.queue))
        for task_id in effects.revoke:
            try:
                messages.revoke(task_id)
            except Exception:  # revocation is an optimisation: claimed steps check their status anyway
                logger.warning("could not revoke %s", task_id)
        for step in effects.deadlines:
            _schedule_deadline(step)
        for timer in effects.timers:
            countdown = max(0.0, (timer.fire_at - timezone.now()).total_seconds())
            messages.send(messages.FIRE_TIMER, timer.pk, countdown=countdown)
        if effects.events:
            publish.events_committed(execution_id, effects.events)

    def run() -> None:
        # What was committed stays committed: if the broker cannot be reached (Redis down), the
        # steps are left pending with their dispatch time, and the sweep sends them again after
        # WB_REDISPATCH_AFTER seconds. The caller (a request starting a run) is not failed for it.
        try:
            send()
        except Exception:
            logger.warning(
                "could not send the steps of execution %s to the workers; the sweep re-sends them",
                execution_id,
                exc_info=True,
            )

    transaction.on_commit(run)


def _schedule_deadline(step: StepRun) -> None:
    if step.deadline_at is None:
        return
    countdown = max(0.0, (step.deadline_at - timezone.now()).total_seconds()) + 0.05
    messages.send(messages.CHECK_DEADLINE, step.pk, countdown=countdown)
