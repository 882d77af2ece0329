"""The loop node: for_each over a list (at most `concurrency` iterations at once, done when
`complete_when` is met), or while/until a condition, continuing as new every `continue_every`
iterations when `long_running`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apps.workflows.definition import expressions
from apps.workflows.definition.plan import NodePlan

from ...choices import StepStatus
from ...models import StepRun
from ..common import DEFAULT_MAX_ITERATIONS, error_dict
from ..signals import continue_as_new

if TYPE_CHECKING:
    from ..runtime import Runtime


def activate(rt: Runtime, scope: str, node: NodePlan, extra: dict | None) -> None:
    spec = node.spec
    mode = spec.get("mode", "for_each")
    state: dict[str, Any] = {
        "mode": mode,
        "next": 0,
        "in_flight": [],
        "results": {},
        "completed": 0,
        "failed": 0,
        "iterations": 0,
    }
    seed = rt.seeds.get(node.id)
    if seed and mode != "for_each":
        # continue-as-new: the loop resumes where the previous run of the chain stopped.
        state.update(iterations=seed.get("iterations", 0), last=seed.get("last"), chain_runs=seed.get("chain_runs", 1))
    if mode == "for_each":
        try:
            items = rt._resolve(scope, node, spec.get("items"), extra)
        except (KeyError, expressions.ReferenceError_) as exc:
            rt._fail_now(scope, node, "ReferenceError", f"items: {exc}")
            return
        except Exception as exc:  # a run-time error of a template is this node's failure
            rt._fail_now(scope, node, "ExpressionError", f"items: {type(exc).__name__}: {exc}")
            return
        if not isinstance(items, list):
            rt._fail_now(scope, node, "LoopError", f"items must be a list, got {type(items).__name__}")
            return
        state["items"] = items
        state["total"] = len(items)
    step = rt.new_step(scope, node, status=StepStatus.WAITING, started_at=rt.now, state=state)
    rt.event("loop_started", node=node.id, scope=scope, step=step, payload={"mode": mode, "items": state.get("total")})
    if mode == "for_each":
        if not state["items"]:
            complete(rt, step, node)
            return
        width = min(int(spec.get("concurrency", 1)), len(state["items"]))
        children = []
        for _ in range(width):
            i = state["next"]
            state["next"] += 1
            state["in_flight"].append(i)
            children.append((f"{scope}{node.id}[{i}]/", node.id))
        rt.touch(step)
        rt._fan_out(step, node, children, extra)
    else:
        if mode == "while":
            try:
                go_on = holds(rt, step, node, scope)
            except Exception as exc:  # ConditionError, or a run-time error such as re.error
                rt._finish_container(
                    step, node, ok=False, error=error_dict("ConditionError", f"{type(exc).__name__}: {exc}", node.id)
                )
                return
            if not go_on:
                complete(rt, step, node)
                return
        next_iteration(rt, step, node)


def holds(rt: Runtime, step: StepRun, node: NodePlan, scope: str) -> bool:
    return expressions.evaluate(node.spec["condition"], rt.context(scope, {"iteration": step.state["iterations"]}))


def next_iteration(rt: Runtime, step: StepRun, node: NodePlan) -> None:
    cap = int(node.spec.get("max_iterations", DEFAULT_MAX_ITERATIONS))
    if step.state["iterations"] >= cap:
        rt._finish_container(
            step,
            node,
            ok=False,
            error=error_dict("LoopLimitExceeded", f"the loop reached max_iterations ({cap})", node.id),
        )
        return
    i = step.state["iterations"]
    step.state["in_flight"] = [i]
    rt.touch(step)
    rt.start_scope(f"{step.scope}{node.id}[{i}]/", node.id, fresh=True)  # iteration i has not run yet


def complete(rt: Runtime, container: StepRun, node: NodePlan) -> None:
    state = container.state
    if state["mode"] != "for_each":
        rt._finish_container(
            container, node, ok=True, output={"iterations": state.get("iterations", 0), "last": state.get("last")}
        )
        return
    how = node.spec.get("aggregate", "list")
    if how == "count":
        output: Any = state["completed"]
    elif how == "sum":
        # (a run started before sums were kept as they go has its results instead)
        output = state.get("sum", 0) + sum(
            r for r in state["results"].values() if isinstance(r, (int, float)) and not isinstance(r, bool)
        )
    else:
        output = [state["results"][k] for k in sorted(state["results"], key=int)]
    rt._finish_container(container, node, ok=True, output=output)


def child_done(
    rt: Runtime,
    container: StepRun,
    node: NodePlan,
    idx: int,
    *,
    ok: bool,
    result: Any = None,
    error: dict | None = None,
) -> None:
    """Iteration `idx` finished."""
    state = container.state
    key = str(idx)
    # loops
    state["in_flight"] = [i for i in state["in_flight"] if i != idx]
    state["iterations"] = state.get("iterations", 0) + 1
    if ok:
        state["completed"] += 1
        if state["mode"] == "for_each":
            # Only a list keeps every result (a count or a sum keeps a number, so the state a
            # completion rewrites does not grow); while/until loops keep only the last result.
            how = node.spec.get("aggregate", "list")
            if how == "list":
                state["results"][key] = result
            elif how == "sum" and isinstance(result, (int, float)) and not isinstance(result, bool):
                state["sum"] = state.get("sum", 0) + result
    else:
        state["failed"] += 1
    rt.touch(container)
    if state["mode"] == "for_each":
        total = state["total"]
        rule = node.spec.get("complete_when", "all")
        needed = total if rule == "all" else 1 if rule == "first" else min(int(rule["count"]), total)
        if state["completed"] >= needed:
            rt._cancel_scope(f"{container.scope}{node.id}[", reason=f"{node.id} reached its completion threshold")
            complete(rt, container, node)
        elif not ok and state["failed"] > total - needed:
            rt._cancel_scope(f"{container.scope}{node.id}[", reason=f"{node.id} failed")
            rt._finish_container(container, node, ok=False, error=error)
        elif state["next"] < total:
            i = state["next"]
            state["next"] += 1
            state["in_flight"].append(i)
            rt.start_scope(f"{container.scope}{node.id}[{i}]/", node.id, fresh=True)  # item i has not started yet
        elif not state["in_flight"]:
            complete(rt, container, node)
        return
    # while / until
    if not ok:
        rt._finish_container(container, node, ok=False, error=error)
        return
    state["last"] = result
    mode = state["mode"]
    try:
        go_on = holds(rt, container, node, container.scope)
    except Exception as exc:  # ConditionError, or a run-time error such as re.error
        message = (
            str(exc)
            if isinstance(exc, (expressions.ConditionError, KeyError, TypeError))
            else f"{type(exc).__name__}: {exc}"
        )
        rt._finish_container(container, node, ok=False, error=error_dict("ConditionError", message, node.id))
        return
    if (mode == "while" and go_on) or (mode == "until" and not go_on):
        if node.spec.get("long_running") and state["iterations"] % int(node.spec.get("continue_every", 1000)) == 0:
            continue_as_new(rt, container, node)
            return
        next_iteration(rt, container, node)
    else:
        complete(rt, container, node)
