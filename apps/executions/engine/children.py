"""Links between runs: child workflows (execute / start + await_child) and continue-as-new.

Locks are never nested across runs: a parent learns that a child finished through a
Celery task run after the child's commit (`child_finished`), and children are
cancelled through tasks too, so a parent and a child never wait on each other's
row locks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from apps.sharing.services import can_start_child, run_initiator
from apps.workflows.definition import expressions
from apps.workflows.definition.validator import DefinitionError
from apps.workflows.models import Workflow

from ..choices import FINISHED_EXECUTION, StepStatus
from ..models import Execution, StepRun
from . import hooks
from .common import error_dict
from .signals import chain_of

if TYPE_CHECKING:
    from .runtime import Runtime

MAX_DEPTH = 10


def _depth(execution) -> int:
    depth, current = 0, execution
    while current.parent_id and depth <= MAX_DEPTH:
        depth += 1
        current = current.parent
    return depth


def start_child(rt: Runtime, scope: str, node, extra: dict | None, *, attempt: int = 1, budget_used: int = 0) -> None:
    """Start a child run for a child_workflow node (or a dynamic node's item)."""
    from .advancing import (
        InputError,
        start_execution,
    )  # imported on use: this module is below the runtime (the node registry imports it)

    spec = node.spec
    context = rt.context(scope, extra)
    try:
        slug = expressions.resolve(spec["workflow"], context)
        child_input = expressions.resolve(spec.get("input", {}), context)
    except (KeyError, expressions.ReferenceError_) as exc:
        rt._fail_now(scope, node, "ReferenceError", str(exc))
        return
    workflow = Workflow.objects.filter(slug=slug).first()
    # The child runs with the rights of whoever started this run (issue 15), never its owner's.
    initiator = run_initiator(rt.ex)
    # A long-lived worker's content-type cache goes stale when the database is restored
    # (or flushed between tests); guardian's checks depend on it, so start from fresh ids.
    ContentType.objects.clear_cache()
    refusal = f"no workflow with slug {slug!r}" if workflow is None else can_start_child(initiator, workflow)
    if refusal:
        rt._fail_now(
            scope,
            node,
            "ChildWorkflowNotFound" if refusal.startswith("no workflow") else "ChildWorkflowNotPermitted",
            refusal,
        )
        return
    if _depth(rt.ex) >= MAX_DEPTH:
        rt._fail_now(scope, node, "ChildWorkflowTooDeep", f"child workflows nest at most {MAX_DEPTH} levels")
        return
    # Which version of the child runs: a number, the latest, or the one current when this run
    # started (pinned), so editing the child does not change what a running parent starts next.
    assert workflow is not None  # refused above when there is none
    definition, number = workflow.definition, None
    if hooks.registered("workflow_version"):
        try:
            definition, number = hooks.call(
                "workflow_version", workflow, spec.get("version", "latest"), at=rt.ex.started_at or rt.ex.created_at
            )
        except LookupError as exc:
            rt._fail_now(scope, node, "ChildWorkflowVersionNotFound", str(exc))
            return
    step = rt.new_step(
        scope,
        node,
        status=StepStatus.WAITING,
        attempt=attempt,
        input=child_input if isinstance(child_input, dict) else {"value": child_input},
        started_at=rt.now,
        state={"extra": extra, "retry_budget_used": budget_used} if extra else {"retry_budget_used": budget_used},
    )
    if not isinstance(child_input, dict):
        child_input = {"value": child_input}
    try:
        with transaction.atomic():
            child = start_execution(
                workflow,
                child_input,
                acting_user=initiator,
                trigger="child",
                parent_step=step,
                correlation_id=rt.ex.correlation_id,
                definition=definition,
                workflow_version=number,
                queue=spec.get("queue") or "",
            )
    except DefinitionError as exc:
        _fail_step(rt, step, "ChildWorkflowInvalid", f"{slug}: " + "; ".join(str(p) for p in exc.problems[:5]))
        return
    except InputError as exc:
        _fail_step(rt, step, "InputError", f"{slug}: {exc.field}: {exc.message}")
        return
    step.state = {**step.state, "child_id": child.pk, "workflow": slug, "version": number}
    rt.touch(step)
    rt.event(
        "child_started",
        node=node.id,
        scope=scope,
        step=step,
        payload={
            "child_execution": child.pk,
            "workflow": slug,
            "version": number,
            "mode": spec.get("mode", "execute"),
            **({"queue": spec["queue"]} if spec.get("queue") else {}),
        },
    )
    if spec.get("mode", "execute") == "start":
        step.status = StepStatus.COMPLETED
        step.output = {"execution_id": child.pk, "workflow": slug}
        step.finished_at = rt.now
        rt.event("step_completed", node=node.id, scope=scope, step=step, payload={"output": step.output})
        rt.on_finished(step)


def _fail_step(rt: Runtime, step, type_: str, message: str) -> None:
    step.status = StepStatus.FAILED
    step.error = error_dict(type_, message, step.node_id, retryable=False)
    step.finished_at = rt.now
    rt.touch(step)
    rt.event("step_failed", node=step.node_id, scope=step.scope, step=step, payload={"error": step.error})
    rt.on_finished(step)


def _child_result(child) -> tuple[str, Any, dict | None]:
    if child.status == "completed":
        return StepStatus.COMPLETED, child.output, None
    if child.status == "continued":
        return StepStatus.WAITING, None, None
    inner = child.error or {}
    kind = "ChildWorkflowCancelled" if child.status == "cancelled" else "ChildWorkflowFailed"
    message = f"child run {child.pk} ({child.workflow.slug}) {child.status}"
    if inner.get("message"):
        message += f": {inner.get('type', 'Error')}: {inner['message']}"
    return StepStatus.FAILED, None, error_dict(kind, message, None, child_execution=child.pk, child_error=inner)


def await_child(rt: Runtime, scope: str, node, extra: dict | None) -> None:
    target = node.spec["child"]
    started = rt.latest(scope, target) or rt.latest("", target)
    child_id = (
        (started.output or {}).get("execution_id")
        if started is not None and started.status == StepStatus.COMPLETED
        else None
    )
    if child_id is None:
        rt._fail_now(scope, node, "ChildWorkflowNotStarted", f"'{target}' did not start a child run")
        return
    child = Execution.objects.select_related("workflow").get(pk=child_id)
    step = rt.new_step(scope, node, status=StepStatus.WAITING, started_at=rt.now, state={"child_id": child_id})
    if child.status in FINISHED_EXECUTION:
        status, output, error = _child_result(child)
        if status == StepStatus.WAITING:
            return
        step.status, step.output, step.finished_at = status, output, rt.now
        if error:
            step.error = {**error, "node": node.id}
        rt.touch(step)
        rt.event(
            "step_completed" if status == StepStatus.COMPLETED else "step_failed",
            node=node.id,
            scope=scope,
            step=step,
            payload={"output": output} if output is not None else {"error": step.error},
        )
        rt.on_finished(step)


def child_finished(child_id: int) -> None:
    """A child run ended: finish the parent step waiting for it (execute mode, a dynamic
    item, or an await_child node). Runs as a task after the child's commit."""
    from .steps import finish_step  # imported on use: this module is below the runtime (the node registry imports it)

    child = Execution.objects.select_related("workflow").filter(pk=child_id).first()
    if child is None or child.parent_id is None or child.status not in FINISHED_EXECUTION:
        return
    if child.status == "continued":
        return  # the chain goes on; its last run reports
    status, output, error = _child_result(child)
    first_id = chain_of(child)[0].pk if child.continued_from_id else child_id
    waiting = StepRun.objects.filter(
        execution_id=child.parent_id,
        status=StepStatus.WAITING,
        node_type__in=["child_workflow", "await_child"],
        state__child_id=first_id,
    )
    for step in waiting:
        err = {**error, "node": step.node_id} if error else None
        finish_step(step.pk, status, output, err, expect=StepStatus.WAITING)
