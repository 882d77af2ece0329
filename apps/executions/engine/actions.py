"""What people do to runs: cancel, pause, resume, decide a waiting step, retry (as is, with
changes, or only the failed items of dynamic nodes)."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.workflows.definition import expressions
from apps.workflows.definition.registry import get_activity
from apps.workflows.definition.validator import compile_definition

from ..choices import FINISHED_EXECUTION, ExecutionStatus, StepStatus
from ..models import Execution, ExecutionEvent, StepRun
from . import publish, signals
from .advancing import InputError, advance, check_input, start_execution
from .dispatch import _UNUSED_RUN_COLUMNS, _apply, plan_of, send_steps
from .nodes.dynamic import snapshot
from .runtime import Runtime

logger = logging.getLogger("workflow.engine")


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

    with transaction.atomic():
        locked = Execution.objects.select_for_update().get(pk=execution.pk)
        if locked.status != ExecutionStatus.PAUSED:
            return False
        locked.status = ExecutionStatus.RUNNING
        _record_run_event(locked, "execution_resumed", {}, actor)
        held = list(StepRun.objects.filter(execution=locked, status=StepStatus.PENDING).values_list("pk", flat=True))
        StepRun.objects.filter(pk__in=held).update(dispatched_at=timezone.now())

        def redispatch() -> None:
            send_steps(held, queue=locked.queue)

        transaction.on_commit(redispatch)
    advance(execution.pk)
    execution.refresh_from_db()
    return True


def _record_run_event(execution: Execution, type_: str, payload: dict, actor: str) -> None:
    execution.last_seq += 1
    event = ExecutionEvent.objects.create(
        execution=execution, seq=execution.last_seq, type=type_, payload=payload, actor=actor
    )
    execution.save(update_fields=["status", "last_seq"])
    publish.on_commit(execution.pk, [event])


def resume_waiting_step(step_id: int, output: dict, *, actor: str = "") -> bool:
    """Finish a waiting approval (output {"decision", "comment", "by"}) or signal_wait step.
    False when it is no longer waiting. See engine/signals.py."""
    return signals.resume_waiting_step(step_id, output, actor=actor)


def retry_execution(execution: Execution, *, acting_user=None) -> Execution:
    """A new run of the same workflow with the same input."""
    return start_execution(
        execution.workflow, execution.input, acting_user=acting_user, trigger="retry", retry_of=execution
    )


@dataclass
class RetryPlan:
    """What a retry with changes will do: the definition and input of the new run, the top-level
    steps it keeps (with their outputs), and the step it re-runs from, with why."""

    definition: dict
    plan: Any
    input: dict
    kept: list[StepRun]
    rerun_from: str | None
    reason: str


def plan_retry_with_changes(
    execution: Execution, *, input: dict | None = None, node_params: dict[str, dict] | None = None
) -> RetryPlan:
    """Decide where a retry with changes starts: the earliest top-level step, in the order the
    failed run ran them, whose resolved inputs would differ with the new input and params (its
    params resolve to other values, its condition chooses another way, its params were changed, or
    it is a node that reads `$.input` and the input changed). Steps before it are kept; it and
    everything after it run again. With nothing changed, the run resumes at the failed step.
    Raises DefinitionError / InputError like start_execution."""
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
    done = [
        s
        for s in StepRun.objects.filter(execution=execution, scope="").order_by("id")
        if s.status in (StepStatus.COMPLETED, StepStatus.SKIPPED)
    ]
    input_changed = new_input != execution.input
    changed_nodes = set(node_params or {})
    steps_so_far: dict[str, dict] = {}
    kept: list[StepRun] = []
    for step in done:
        node = plan.nodes.get(step.node_id)
        reason = (
            _differs(step, node, plan, new_input, execution, steps_so_far, input_changed, changed_nodes)
            if node is not None
            else None
        )
        if reason:
            return RetryPlan(definition, plan, new_input, kept, step.node_id, reason)
        kept.append(step)
        steps_so_far[step.node_id] = {"output": step.output, "status": step.status}
    failed = StepRun.objects.filter(execution=execution, scope="", status=StepStatus.FAILED).order_by("-id").first()
    return RetryPlan(definition, plan, new_input, kept, failed.node_id if failed else None, "it failed")


def _differs(
    step: StepRun,
    node,
    plan,
    new_input: dict,
    execution: Execution,
    steps: dict,
    input_changed: bool,
    changed_nodes: set[str],
) -> str | None:
    """Why `step` would not run as it did with the new input and params (None: it would)."""
    if step.status != StepStatus.COMPLETED:
        return None  # a skipped step: what decided that is checked where it was decided
    nested = (
        {n.id for n in plan.nodes.values() if n.scope.startswith(node.id)}
        if node.type in ("loop", "parallel")
        else set()
    )
    if node.id in changed_nodes or nested & changed_nodes:
        return "its params changed"
    context = {
        "input": new_input,
        "vars": execution.variables,
        "steps": steps,
        "execution": {"id": execution.pk, "workflow_id": execution.workflow_id},
        "item": None,
        "index": None,
        "iteration": None,
    }
    try:
        if node.type == "activity":
            spec = get_activity(node.spec.get("activity", ""))
            raw = spec.raw_params if spec is not None else ()
            params = expressions.resolve(
                {k: v for k, v in node.spec.get("params", {}).items() if k not in raw}, context
            )
            params.update({k: v for k, v in node.spec.get("params", {}).items() if k in raw})
            return "its params resolve to other values" if params != step.input else None
        if node.type == "condition":
            chosen = node.spec.get("default")
            for case in node.spec.get("cases", []):
                if expressions.evaluate(case["when"], context):
                    chosen = case["to"]
                    break
            return f"it now chooses {chosen}" if chosen != (step.output or {}).get("chosen") else None
    except Exception:  # what no longer resolves is re-run, and fails or succeeds on its own
        return "its inputs no longer resolve"
    if input_changed and "$.input" in json.dumps(node.spec):
        return "it reads the run input, which changed"
    return None


def retry_with_changes(
    execution: Execution, *, acting_user=None, input: dict | None = None, node_params: dict[str, dict] | None = None
) -> Execution:
    """Re-run a failed run with a changed input or node params, from the earliest top-level step
    those changes reach (`plan_retry_with_changes`), keeping the completed steps before it.

    `node_params` replaces the params of the named activity nodes (in this new run only; the
    workflow is not changed). Kept steps are copied with their outputs, and the variables are
    those the failed run ended with; everything from the re-run step on runs again.
    Raises DefinitionError / InputError like start_execution.
    """
    retry = plan_retry_with_changes(execution, input=input, node_params=node_params)
    definition, plan, new_input = retry.definition, retry.plan, retry.input
    latest: dict[str, StepRun] = {}
    for step in retry.kept:
        latest[step.node_id] = step
    with transaction.atomic():
        new = Execution.objects.create(
            workflow=execution.workflow,
            definition=definition,
            input=new_input,
            variables=dict(execution.variables),
            trigger="retry",
            retry_of=execution,
            status=ExecutionStatus.RUNNING,
            created_by=acting_user if getattr(acting_user, "is_authenticated", False) else None,
        )
        rt = Runtime(new, plan)
        rt.set_ex(started_at=rt.now)
        rt.event(
            "execution_started",
            payload={
                "input": new_input,
                "trigger": "retry",
                "variables": new.variables,
                "retry_of": execution.pk,
                "kept_steps": sorted(latest),
                "rerun_from": retry.rerun_from,
                "rerun_reason": retry.reason,
            },
        )
        copies = []
        for step in latest.values():
            copies.append(
                rt.new_step(
                    "",
                    plan.node(step.node_id),
                    status=step.status,
                    output=step.output,
                    input=step.input,
                    started_at=step.started_at,
                    finished_at=step.finished_at,
                    advanced=False,
                    state={"kept_from": step.pk},
                )
            )
            rt.event(
                "step_kept",
                node=step.node_id,
                step=copies[-1],
                payload={"from_execution": execution.pk, "output": step.output},
            )
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
            workflow=execution.workflow,
            definition=execution.definition,
            input=execution.input,
            variables=dict(execution.variables),
            trigger="retry",
            retry_of=execution,
            status=ExecutionStatus.RUNNING,
            created_by=acting_user if getattr(acting_user, "is_authenticated", False) else None,
        )
        rt = Runtime(new, plan)
        rt.seeds = seeds
        rt.set_ex(started_at=rt.now)
        rt.event(
            "execution_started",
            payload={
                "input": new.input,
                "trigger": "retry",
                "variables": new.variables,
                "retry_of": execution.pk,
                "retry_failed_items": {k: sorted(set(v)) for k, v in seeds.items()},
            },
        )
        before = _upstream_of(plan, set(seeds))
        copies = []
        for node_id, step in kept.items():
            if node_id not in before:
                continue
            copies.append(
                rt.new_step(
                    "",
                    plan.node(node_id),
                    status=step.status,
                    output=step.output,
                    input=step.input,
                    started_at=step.started_at,
                    finished_at=step.finished_at,
                    advanced=False,
                    state={"kept_from": step.pk},
                )
            )
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
