"""Waiting on the outside world: signal_wait and approval nodes, signals (with their
non-blocking handlers), pause and resume, and continue-as-new.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apps.workflows.definition import expressions
from apps.workflows.definition.schema import RESERVED_SIGNALS
from apps.workflows.definition.validator import DefinitionError, compile_definition, first_data_error

from ..choices import FINISHED_EXECUTION, ExecutionStatus, StepStatus
from ..models import Execution, StepRun, Timer
from . import hooks
from .common import error_dict

if TYPE_CHECKING:
    from apps.workflows.definition.plan import NodePlan

    from .runtime import Runtime

logger = logging.getLogger("workflow.engine")


class SignalRejected(Exception):
    """The signal cannot be delivered; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str, field: str | None = None):
        self.status = status
        self.message = message
        self.field = field
        super().__init__(message)


#
# Activation
#


def activate_signal_wait(rt: Runtime, scope: str, node: NodePlan, extra: dict | None) -> None:
    name = node.spec["signal"]
    pending = rt.ex.pending_signals or []
    for i, signal in enumerate(pending):
        if signal.get("name") == name:
            rt.set_ex(pending_signals=pending[:i] + pending[i + 1 :])
            step = rt.new_step(
                scope,
                node,
                status=StepStatus.COMPLETED,
                started_at=rt.now,
                finished_at=rt.now,
                output=signal.get("payload"),
                state={"signal": name, "buffered": True},
            )
            rt.event(
                "signal_consumed", node=node.id, scope=scope, step=step, payload={"signal": name, "buffered": True}
            )
            rt.on_finished(step)
            return
    step = rt.new_step(scope, node, status=StepStatus.WAITING, started_at=rt.now, state={"signal": name})
    rt.event(
        "signal_wait_started",
        node=node.id,
        scope=scope,
        step=step,
        payload={"signal": name, "timeout": node.spec.get("timeout")},
    )
    if node.spec.get("timeout"):
        _timeout_timer(rt, step, float(node.spec["timeout"]))


def activate_approval(rt: Runtime, scope: str, node: NodePlan, extra: dict | None) -> None:
    spec = node.spec
    context = rt.context(scope, extra)
    try:
        title = str(expressions.resolve(spec["title"], context))
        description = str(expressions.resolve(spec.get("description", ""), context))
    except Exception as exc:  # a missing reference or any run-time error of a template fails this node
        rt._fail_now(scope, node, "ReferenceError", str(exc))
        return
    outcomes = spec.get("outcomes") or ["approve", "reject"]
    assignees = spec.get("assignees") or {}
    due_at = rt.now + timedelta(seconds=float(spec["due_in"])) if spec.get("due_in") else None
    step = rt.new_step(
        scope,
        node,
        status=StepStatus.WAITING,
        started_at=rt.now,
        input={
            "title": title,
            "description": description,
            "assignees": assignees,
            "outcomes": outcomes,
            "due_at": due_at.isoformat() if due_at else None,
        },
        state={"outcomes": outcomes},
    )
    if not hooks.registered("offer_approval"):
        step.status, step.finished_at = StepStatus.FAILED, rt.now
        step.error = {"type": "ApprovalsUnavailable", "message": "the work-item app is not installed", "node": node.id}
        rt.touch(step)
        rt.on_finished(step)
        return
    item = hooks.call(
        "offer_approval",
        step,
        title=title,
        description=description,
        users=list(assignees.get("users", [])),
        groups=list(assignees.get("groups", [])),
        outcomes=outcomes,
        due_at=due_at,
        allocation=spec.get("allocation") or {},
    )
    rt.event(
        "approval_requested",
        node=node.id,
        scope=scope,
        step=step,
        payload={
            "title": title,
            "assignees": assignees,
            "outcomes": outcomes,
            "due_at": due_at.isoformat() if due_at else None,
            "work_item": getattr(item, "pk", None),
        },
    )
    if due_at:
        _timeout_timer(rt, step, float(spec["due_in"]))


def _timeout_timer(rt: Runtime, step: StepRun, seconds: float) -> None:
    timer = Timer(
        execution=rt.ex, step=step, kind=Timer.Kind.SIGNAL_TIMEOUT, fire_at=rt.now + timedelta(seconds=seconds)
    )
    timer.save(force_insert=True)
    rt.effects.timers.append(timer)


#
# Resuming a waiting step
#


def resume_waiting_step(step_id: int, output: dict, *, actor: str = "", timed_out: bool = False) -> bool:
    """Finish a waiting signal_wait or approval step with `output`, routing on it.

    Approvals route on output["decision"] (routes, "expired" -> timeout_to); a timed-out
    signal_wait goes to timeout_to. Without a timeout path, a timeout fails the node.
    Returns False when the step is no longer waiting (someone got there first).
    """
    from .steps import finish_step  # imported on use: this module is below the runtime (the node registry imports it)

    with transaction.atomic():
        step = StepRun.objects.filter(pk=step_id).only("execution_id").first()
        if step is None:
            return False
        execution = Execution.objects.select_for_update().get(pk=step.execution_id)
        step = StepRun.objects.filter(
            pk=step_id, status=StepStatus.WAITING, node_type__in=["signal_wait", "approval"]
        ).first()
        if step is None or execution.status in FINISHED_EXECUTION:
            return False
        node = compile_definition(execution.definition).node(step.node_id)
        state = dict(step.state)
        status, error = StepStatus.COMPLETED, None
        expired = timed_out or (node.type == "approval" and output.get("decision") == "expired")
        if expired:
            target = node.spec.get("timeout_to")
            if target:
                state["chosen"] = target
            else:
                status = StepStatus.FAILED
                kind = "ApprovalExpired" if node.type == "approval" else "SignalTimeout"
                what = (
                    "nobody decided in time"
                    if node.type == "approval"
                    else f"signal '{node.spec.get('signal')}' did not arrive in time"
                )
                error = error_dict(kind, what, node.id, retryable=False)
        elif node.type == "approval":
            decision = output.get("decision")
            route = (node.spec.get("routes") or {}).get(decision)
            if route:
                state["chosen"] = route
        state["actor"] = actor
        StepRun.objects.filter(pk=step_id).update(state=state)
        Timer.objects.filter(step_id=step_id, fired_at__isnull=True).update(fired_at=timezone.now())
        finish_step(
            step_id, status, output if status == StepStatus.COMPLETED else None, error, expect=StepStatus.WAITING
        )
    return True


#
# Signals
#


def check_signal(execution: Execution, name: str, payload: Any) -> dict | None:
    """Raise SignalRejected unless `name` may be sent to `execution` with `payload`; return its declaration."""
    if execution.status in FINISHED_EXECUTION:
        raise SignalRejected(409, f"the run has finished ({execution.status}); it takes no more signals")
    if name in RESERVED_SIGNALS:
        return None
    declared = {
        s["name"]: s
        for s in execution.definition.get("signals", [])
        if isinstance(s, dict) and isinstance(s.get("name"), str)
    }
    if name not in declared:
        names = ", ".join(sorted(declared) + list(RESERVED_SIGNALS))
        raise SignalRejected(
            400, f"this workflow declares no signal named '{name}' (it accepts: {names})", field="name"
        )
    schema = declared[name].get("schema")
    problem = first_data_error(schema or None, payload)  # without a schema, the storage checks still apply
    if problem:
        path, message = problem
        raise SignalRejected(400, message, field="payload" + (f".{path}" if path else ""))
    return declared[name]


def send_signal(execution: Execution, name: str, payload: Any = None, *, actor: str = "") -> dict:
    """Deliver a signal: record it, run its handler, wake a waiting signal_wait (or keep it
    for a later one). pause, resume and cancel are built in. Raises SignalRejected."""
    from .actions import (
        cancel_execution,
        pause_execution,
        resume_execution,
    )  # imported on use: this module is below the runtime (the node registry imports it)
    from .runtime import Runtime  # imported on use: this module is below the runtime (the node registry imports it)

    payload = {} if payload is None else payload
    declaration = check_signal(execution, name, payload)
    if name == "pause":
        if not pause_execution(execution, actor=actor):
            raise SignalRejected(409, f"only a running run can be paused (this one is {execution.status})")
        return {"delivered": "paused"}
    if name == "resume":
        if not resume_execution(execution, actor=actor):
            raise SignalRejected(409, f"only a paused run can be resumed (this one is {execution.status})")
        return {"delivered": "resumed"}
    if name == "cancel":
        user = get_user_model().objects.filter(username=actor).first() if actor else None
        cancel_execution(execution, acting_user=user, reason=f"cancel signal from {actor or 'an integration'}")
        return {"delivered": "cancelled"}
    waiting_step = None
    with transaction.atomic():
        locked = Execution.objects.select_for_update().get(pk=execution.pk)
        if locked.status in FINISHED_EXECUTION:
            raise SignalRejected(409, f"the run has finished ({locked.status}); it takes no more signals")
        try:
            plan = compile_definition(locked.definition)
        except DefinitionError as exc:  # a run's definition was valid when it started; one edited in the database since
            raise SignalRejected(
                409, f"the run's definition no longer compiles, so it cannot take signals: {exc}"
            ) from exc
        rt = Runtime(locked, plan)
        rt.event("signal_received", payload={"signal": name, "payload": payload}, actor=actor)
        handler = (declaration or {}).get("handler") or {}
        if handler.get("set"):
            try:
                changes = expressions.resolve(
                    handler["set"], rt.context("", {"signal": {"name": name, "payload": payload}})
                )
            except Exception as exc:  # a missing reference or any run-time error of a template fails this node
                changes = {}
                rt.event("signal_handler_failed", payload={"signal": name, "error": str(exc)})
            if changes:
                locked.variables.update(changes)
                rt._ex_dirty.add("variables")
                rt.event("variables_updated", payload={"set": changes, "signal": name})
        waiting_step = (
            StepRun.objects.filter(
                execution=locked, status=StepStatus.WAITING, node_type="signal_wait", state__signal=name
            )
            .order_by("id")
            .first()
        )
        if waiting_step is None and any(
            n.type == "signal_wait" and n.spec.get("signal") == name for n in rt.plan.nodes.values()
        ):
            rt.set_ex(
                pending_signals=[*(locked.pending_signals or []), {"name": name, "payload": payload, "actor": actor}]
            )
        effects = rt.flush()
        from .dispatch import _apply  # imported on use: this module is below the runtime (the node registry imports it)

        _apply(effects, locked.pk)
        if waiting_step is not None:
            resume_waiting_step(waiting_step.pk, payload, actor=actor)
    return {"delivered": "woke" if waiting_step else "recorded", "step": waiting_step.node_id if waiting_step else None}


#
# Continue-as-new
#


def continue_as_new(rt: Runtime, container: StepRun, node: NodePlan) -> None:
    """Close this run as `continued` and start the next with the variables and the loop's
    progress carried over, so history per run stays bounded."""
    from .actions import (
        _upstream_of,
    )  # imported on use: this module is below the runtime (the node registry imports it)
    from .dispatch import _apply  # imported on use: this module is below the runtime (the node registry imports it)
    from .nodes.loop import (
        next_iteration,
    )  # imported on use: this module is below the runtime (the node registry imports it)
    from .runtime import Runtime  # imported on use: this module is below the runtime (the node registry imports it)

    if container.scope != "":
        next_iteration(rt, container, node)  # only top-level loops continue as new
        return
    old = rt.ex
    new = Execution.objects.create(
        workflow_id=old.workflow_id,
        definition=old.definition,
        input=old.input,
        variables=dict(old.variables),
        trigger="continue",
        continued_from=old,
        parent_id=old.parent_id,
        parent_step_id=old.parent_step_id,
        created_by=old.created_by,
        status=ExecutionStatus.RUNNING,
        correlation_id=old.correlation_id,
        pending_signals=list(old.pending_signals or []),
    )
    nrt = Runtime(new, rt.plan)
    nrt.seeds[node.id] = {
        "iterations": container.state.get("iterations", 0),
        "last": container.state.get("last"),
        "chain_runs": container.state.get("chain_runs", 1) + 1,
    }
    nrt.set_ex(started_at=nrt.now)
    nrt.event(
        "execution_started",
        payload={
            "input": new.input,
            "trigger": "continue",
            "variables": new.variables,
            "continued_from": old.pk,
            "iterations": container.state.get("iterations", 0),
        },
    )
    upstream = _upstream_of(rt.plan, {node.id})
    copies = []
    for node_id in upstream:
        prior = rt.latest("", node_id)
        if prior is not None and prior.status in (StepStatus.COMPLETED, StepStatus.SKIPPED):
            copies.append(
                nrt.new_step(
                    "",
                    rt.plan.node(node_id),
                    status=prior.status,
                    output=prior.output,
                    started_at=prior.started_at,
                    finished_at=prior.finished_at,
                    advanced=False,
                    state={"kept_from": prior.pk},
                )
            )
    if not copies:
        nrt.start_scope("", rt.plan.root.id)
    for copy in sorted(copies, key=lambda s: s.pk):
        nrt.on_finished(copy)
    _apply(nrt.flush(), new.pk)
    rt.set_ex(pending_signals=[])
    rt._finish_execution(
        ExecutionStatus.CONTINUED, output={"continued_as": new.pk, "iterations": container.state.get("iterations", 0)}
    )


def chain_of(execution: Execution) -> list[Execution]:
    """Every run of a continue-as-new chain, first to last."""
    first = execution
    seen = 0
    while first.continued_from_id and seen < 100_000:
        first = Execution.objects.only("id", "continued_from_id").get(pk=first.continued_from_id)
        seen += 1
    chain = [first]
    while True:
        nxt = Execution.objects.filter(continued_from_id=chain[-1].pk).first()
        if nxt is None:
            break
        chain.append(nxt)
    return chain
