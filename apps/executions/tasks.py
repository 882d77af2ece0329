"""Celery tasks: thin callers of the engine. Each takes ids and re-reads the database."""

from __future__ import annotations

from celery import shared_task

from workflowsite.celery import app

from .engine import children, orchestrator
from .models import Execution


@shared_task(name="executions.run_step", bind=True, acks_late=True, ignore_result=True)
def run_step(self, step_id: int) -> None:
    orchestrator.execute_step(step_id, worker=self.request.hostname or "", task_id=self.request.id or "")


@shared_task(name="executions.run_chord_step", bind=True, acks_late=True, ignore_result=False)
def run_chord_step(self, step_id: int) -> None:
    """A step in a chord header: recorded without locking the run; the chord callback advances."""
    orchestrator.execute_chord_step(step_id, worker=self.request.hostname or "", task_id=self.request.id or "")


@shared_task(name="executions.advance", acks_late=True, ignore_result=True)
def advance_execution(*args) -> None:
    """Chord callback (or any caller): advance a run. The first positional int is the id."""
    execution_id = next(a for a in reversed(args) if isinstance(a, int))
    inline = orchestrator.advance(execution_id, allow_inline=True)
    for step in inline:
        orchestrator.execute_step(step.pk)


@shared_task(name="executions.fire_timer", acks_late=True, ignore_result=True)
def fire_timer(timer_id: int) -> None:
    orchestrator.fire_timer(timer_id)


@shared_task(name="executions.check_deadline", acks_late=True, ignore_result=True)
def check_deadline(step_id: int) -> None:
    orchestrator.check_deadline(step_id)


@shared_task(name="executions.sweep", ignore_result=True)
def sweep() -> dict:
    return orchestrator.sweep()


__all__ = ["app", "run_step", "run_chord_step", "advance_execution", "fire_timer", "check_deadline", "sweep"]


@shared_task(name="executions.child_finished", acks_late=True, ignore_result=True)
def child_finished(child_id: int) -> None:
    children.child_finished(child_id)


@shared_task(name="executions.cancel_child", acks_late=True, ignore_result=True)
def cancel_child(child_id: int, reason: str = "parent cancelled") -> None:
    child = Execution.objects.filter(pk=child_id).first()
    if child is not None:
        orchestrator.cancel_execution(child, reason=reason)
