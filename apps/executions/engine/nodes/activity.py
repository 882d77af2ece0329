"""The activity node: resolve its params, then schedule the step (for a worker, already claimed
for the worker whose step made it ready, or inline for a local activity); its retry policy."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from apps.workflows.definition import expressions
from apps.workflows.definition.plan import NodePlan
from apps.workflows.definition.registry import get_activity

from ...activities import ActivityContext, ActivityError
from ...choices import StepStatus
from ...models import StepRun, Timer
from ..common import MAX_WORKER_LOSSES, WORKER_LOST, backoff_seconds, error_dict
from ..redaction import redact

if TYPE_CHECKING:
    from ..runtime import Runtime


def activate(
    rt: Runtime,
    scope: str,
    node: NodePlan,
    extra: dict | None,
    attempt: int = 1,
    delay: float = 0.0,
    carry: dict | None = None,
) -> None:
    """Schedule an attempt of an activity node; `carry` is retry bookkeeping for its state."""
    spec = get_activity(node.spec["activity"])
    raw_keys = spec.raw_params if spec is not None else ()
    given = node.spec.get("params", {})
    try:
        params = rt._resolve(scope, node, {k: v for k, v in given.items() if k not in raw_keys}, extra)
    except (KeyError, expressions.ReferenceError_) as exc:
        rt._fail_now(scope, node, "ReferenceError", f"params: {exc.args[0] if exc.args else exc}")
        return
    except Exception as exc:  # a run-time error of a template is this node's failure
        rt._fail_now(scope, node, "ExpressionError", f"params: {type(exc).__name__}: {exc}")
        return
    params.update({k: v for k, v in given.items() if k in raw_keys})
    scheduled_for = rt.now + timedelta(seconds=delay) if delay else None
    # Sticky: the worker whose step made this one ready runs it itself, right after commit
    # (not a local activity, which runs inline; not part of a fan-out, which goes out together).
    sticky = (
        rt.sticky
        if (
            rt.sticky is not None
            and not delay
            and rt._batch is None
            and spec is not None
            and not (rt.allow_inline and spec.local)
            and not node.spec.get("queue")
        )
        else None
    )
    claimed: dict[str, Any] = {}
    if not delay and sticky is None and not (rt.allow_inline and spec is not None and spec.local):
        # Sent to the workers right after commit (alone, in a group or a chord): its dispatch
        # time goes in with the row (the sweep re-sends it if the send is lost).
        claimed["dispatched_at"] = rt.now
    if sticky is not None:
        rt.sticky = None  # one per advance
        timeout = node.spec.get("timeout")
        claimed = {
            "started_at": rt.now,
            "heartbeat_at": rt.now,
            "dispatched_at": rt.now,
            "worker": sticky.worker,
            "task_id": "sticky",
            **({"deadline_at": rt.now + timedelta(seconds=float(timeout))} if timeout else {}),
        }
    step = rt.new_step(
        scope,
        node,
        defer=rt._deferred is not None and not delay and not (rt.allow_inline and spec is not None and spec.local),
        status=StepStatus.SCHEDULED if delay else StepStatus.RUNNING if sticky is not None else StepStatus.PENDING,
        attempt=attempt,
        input=params,
        scheduled_for=scheduled_for,
        state={
            **({"extra": extra} if extra else {}),
            **({"timeout": node.spec["timeout"]} if node.spec.get("timeout") else {}),
            **(carry or {}),
        },
        **claimed,
    )
    if scheduled_for is not None:  # a delay
        rt.event(
            "step_retry_scheduled",
            node=node.id,
            scope=scope,
            step=step,
            payload={"attempt": attempt, "delay_seconds": round(delay, 3)},
        )
        timer = Timer(execution=rt.ex, step=step, kind=Timer.Kind.RETRY, fire_at=scheduled_for)
        timer.save(force_insert=True)
        rt.effects.timers.append(timer)
        return
    rt.event(
        "step_scheduled",
        node=node.id,
        scope=scope,
        step=step,
        payload={"activity": node.spec["activity"], "attempt": attempt, "input": params},
    )
    if sticky is not None:
        rt.event(
            "step_started",
            node=node.id,
            scope=scope,
            step=step,
            payload={"attempt": attempt, "worker": sticky.worker, "sticky": True},
        )
        rt.effects.inline.append(step)
        if step.deadline_at:
            rt.effects.deadlines.append(step)
        return
    if rt.allow_inline and spec is not None and spec.local:
        if rt._local_budget > 0 and not node.spec.get("timeout"):
            # A local activity (cheap, no side effects outside the run) runs right here,
            # inside the advance that made it ready: no queue hop, no extra transaction.
            rt._local_budget -= 1
            run_local(rt, step, spec)
            return
        rt.effects.inline.append(step)
    elif rt._batch is not None:
        rt._batch.append(step)
    else:
        rt.effects.dispatch.append(step)


def run_local(rt: Runtime, step: StepRun, spec) -> None:
    ctx = ActivityContext(
        execution_id=rt.ex.pk, step_id=step.pk, node_id=step.node_id, attempt=step.attempt, variables={}
    )
    step.started_at = timezone.now()
    step.worker = f"inline@{socket.gethostname()}"
    rt.event(
        "step_started",
        node=step.node_id,
        scope=step.scope,
        step=step,
        payload={"attempt": step.attempt, "worker": step.worker, "inline": True},
    )
    try:
        output = spec.fn(step.input or {}, ctx)
        if spec.name == "set" and ctx.variables:
            output = ctx.variables
        step.status, step.output, step.error = StepStatus.COMPLETED, redact(output), None
    except ActivityError as exc:
        step.status, step.error = (
            StepStatus.FAILED,
            error_dict(exc.type, exc.message, step.node_id, retryable=exc.retryable),
        )
    except Exception as exc:  # an activity's own bug is a step failure
        step.status, step.error = (
            StepStatus.FAILED,
            error_dict(type(exc).__name__, str(exc) or type(exc).__name__, step.node_id),
        )
    step.finished_at = timezone.now()
    step.logs = redact(ctx.logs)
    rt.touch(step)
    if step.status == StepStatus.COMPLETED:
        rt.event(
            "step_completed",
            node=step.node_id,
            scope=step.scope,
            step=step,
            payload={"attempt": step.attempt, "output": step.output, "duration_ms": step.duration_ms},
        )
    else:
        rt.event(
            "step_failed",
            node=step.node_id,
            scope=step.scope,
            step=step,
            payload={"attempt": step.attempt, "error": step.error},
        )
    rt.on_finished(step)


def retry(rt: Runtime, step: StepRun, node: NodePlan) -> bool:
    """Start the next attempt of a failed step if its retry policy (or a lost worker) allows."""
    error = step.error or {}
    policy = node.spec.get("retry") or {}
    if error.get("type") == WORKER_LOST:
        losses = step.state.get("worker_losses", 0) + 1
        if losses <= MAX_WORKER_LOSSES:
            carry = {
                "worker_losses": losses,
                "retry_budget_used": step.state.get("retry_budget_used", step.attempt - 1),
            }
            activate(rt, step.scope, node, step.state.get("extra"), attempt=step.attempt + 1, carry=carry)
            return True
        return False
    if error.get("retryable") is False:
        return False
    if error.get("type") in policy.get("non_retryable", []):
        return False
    used = step.state.get("retry_budget_used", step.attempt - 1) + 1  # attempts that counted, this one included
    if used >= int(policy.get("max_attempts", 1)):
        return False
    delay = backoff_seconds(policy, used)
    carry = {"retry_budget_used": used, "worker_losses": step.state.get("worker_losses", 0)}
    activate(rt, step.scope, node, step.state.get("extra"), attempt=step.attempt + 1, delay=delay, carry=carry)
    return True
