"""The Celery messages the engine sends, named rather than imported: `apps.executions.tasks`
imports the engine to run them, so the engine refers to its tasks by their registered names
(the same names the workers run) and needs no import of the tasks module."""

from __future__ import annotations

from typing import Any

from celery import Signature

from workflowsite.celery import app

RUN_STEP = "executions.run_step"
RUN_CHORD_STEP = "executions.run_chord_step"
ADVANCE = "executions.advance"
FIRE_TIMER = "executions.fire_timer"
CHECK_DEADLINE = "executions.check_deadline"
CHILD_FINISHED = "executions.child_finished"
CANCEL_CHILD = "executions.cancel_child"


def task(name: str, *args: Any, **options: Any) -> Signature:
    """An immutable signature of the task `name` with `args` (`options`: queue, countdown, …)."""
    return app.signature(name, args=args, immutable=True, **options)


def send(name: str, *args: Any, **options: Any) -> None:
    task(name, *args, **options).apply_async()


def revoke(task_id: str) -> None:
    app.control.revoke(task_id)
