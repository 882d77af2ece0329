"""When the engine itself fails: an exception escaping an advance fails the run with an
`EngineError` event naming the node, in a new transaction that keeps the step's result."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from ..choices import ACTIVE_STEP, FINISHED_EXECUTION, ExecutionStatus, StepStatus
from ..models import Execution, ExecutionEvent, StepRun
from . import publish
from .dispatch import _UNUSED_RUN_COLUMNS, _apply, plan_of
from .runtime import Runtime, error_dict

logger = logging.getLogger("workflow.engine")


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


def _fail_on_engine_error(
    execution_id: int, exc: BaseException, *, node_id: str = "", step_result: tuple | None = None
) -> None:
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
                    StepRun.objects.filter(pk=step_id).update(
                        status=StepStatus.FAILED, finished_at=timezone.now(), advanced=True, error=error
                    )
                rt.event(
                    _STEP_EVENT[step.status],
                    node=step.node_id,
                    scope=step.scope,
                    step=step,
                    payload={"attempt": step.attempt, **({"error": step.error} if step.error else {})},
                )
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
            StepRun.objects.filter(execution_id=execution_id, status__in=list(ACTIVE_STEP)).update(
                status=StepStatus.CANCELLED, finished_at=now, advanced=True
            )
            execution.last_seq += 1
            event = ExecutionEvent.objects.create(
                execution=execution,
                seq=execution.last_seq,
                type="execution_failed",
                payload={"status": "failed", "error": error},
            )
            Execution.objects.filter(pk=execution_id).update(
                status=ExecutionStatus.FAILED, finished_at=now, error=error, last_seq=execution.last_seq
            )
            publish.on_commit(execution_id, [event])
            return
        _apply(effects, execution.pk)


_STEP_EVENT: dict[str, str] = {
    StepStatus.COMPLETED: "step_completed",
    StepStatus.FAILED: "step_failed",
    StepStatus.CANCELLED: "step_cancelled",
    StepStatus.SKIPPED: "step_skipped",
}
