"""The dynamic node: dependency-aware fan-out with exactly `max_concurrent` items in flight.

Its step run's `state` is the whole bookkeeping (item statuses, in-flight set,
results, timings), updated under the run's row lock whenever an item finishes, so a
freed slot is refilled in the same transaction that records the completion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apps.workflows.definition import expressions
from apps.workflows.definition.plan import NodePlan

from ..choices import StepStatus
from ..depgraph import DependencyGraph, GraphError
from ..models import StepRun

if TYPE_CHECKING:
    from .runtime import Runtime

DEFAULT_MAX_CONCURRENT = 4


def _graph(state: dict) -> DependencyGraph:
    graph = DependencyGraph()
    for item_id in state["ids"]:
        graph.add_node(item_id, state["durations"].get(item_id))
    for item_id, deps in state["deps"].items():
        for dep in deps:
            graph.add_edge(dep, item_id)
    return graph


def build_state(items: list, spec: dict) -> dict:
    """Validate the items and build the bookkeeping; raises GraphError naming the problem."""
    id_key = spec.get("id_key", "id")
    deps_key = spec.get("depends_on_key", "depends_on")
    duration_key = spec.get("duration_key", "duration")
    if not all(isinstance(item, dict) for item in items):
        raise GraphError("every item must be an object")
    graph = DependencyGraph.from_items(items, id_key=id_key, deps_key=deps_key, duration_key=duration_key)
    graph.check()
    ids = [str(item[id_key]) for item in items]
    durations = {}
    for item in items:
        value = item.get(duration_key)
        durations[str(item[id_key])] = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    priority = graph.remaining_path_lengths(default_duration=1.0)
    return {
        "items": items,
        "ids": ids,
        "deps": {str(item[id_key]): [str(d) for d in (item.get(deps_key) or [])] for item in items},
        "durations": durations,
        "priority": {str(k): v for k, v in priority.items()},
        "status": {item_id: "queued" for item_id in ids},
        "in_flight": [],
        "results": {},
        "errors": {},
        "started": {},
        "finished": {},
        "attempts": {},
        "max_concurrent": int(spec.get("max_concurrent", DEFAULT_MAX_CONCURRENT)),
        "fail_fast": bool(spec.get("fail_fast", False)),
        "peak": 0,
        "kept": [],
    }


def activate(rt: "Runtime", scope: str, node: NodePlan, extra: dict | None, seed: dict | None = None) -> None:
    try:
        items = expressions.resolve(node.spec["items"], rt.context(scope, extra))
    except Exception as exc:  # a missing reference or any run-time error of a template fails this node
        rt._fail_now(scope, node, "ReferenceError", f"items: {exc}")
        return
    if not isinstance(items, list):
        rt._fail_now(scope, node, "DynamicError", f"items must be a list, got {type(items).__name__}")
        return
    try:
        state = build_state(items, node.spec)
    except GraphError as exc:
        rt._fail_now(scope, node, "DependencyCycle" if "cycle" in str(exc) else "DynamicError", str(exc))
        return
    seed = seed if seed is not None else rt.seeds.get(node.id)
    if seed:
        # retry-failed: items that completed in the earlier run are kept with their results.
        for item_id, result in seed.items():
            if item_id in state["status"]:
                state["status"][item_id] = "completed"
                state["results"][item_id] = result
                state["kept"].append(item_id)
    step = rt.new_step(scope, node, status=StepStatus.WAITING, started_at=rt.now, state=state)
    rt.event("dynamic_started", node=node.id, scope=scope, step=step, payload={"items": len(items), "max_concurrent": state["max_concurrent"], "kept": state["kept"]})
    fill(rt, step, node)


def fill(rt: "Runtime", step: StepRun, node: NodePlan) -> None:
    """Start ready items until max_concurrent are in flight; finish the node when nothing is left."""
    state = step.state
    graph = _graph(state)
    status = state["status"]
    completed = {i for i, s in status.items() if s == "completed"}
    not_queued = [i for i, s in status.items() if s != "queued"]
    ready = graph.ready(completed, running=state["in_flight"], blocked=not_queued)
    order = {item_id: n for n, item_id in enumerate(state["ids"])}
    ready.sort(key=lambda i: (-state["priority"].get(i, 0.0), order[i]))
    started = []
    while ready and len(state["in_flight"]) < state["max_concurrent"]:
        item_id = ready.pop(0)
        idx = order[item_id]
        status[item_id] = "running"
        state["in_flight"].append(item_id)
        state["started"][item_id] = rt.now.isoformat()
        state["attempts"][item_id] = state["attempts"].get(item_id, 0) + 1
        started.append(item_id)
        rt.event("item_started", node=node.id, scope=step.scope, step=step, payload={"item": item_id, "in_flight": len(state["in_flight"])})
        rt.start_scope(f"{step.scope}{node.id}[{idx}]/", node.id, {"item": state["items"][idx]})
        if step.status != StepStatus.WAITING:
            return  # a synchronous failure finished the node meanwhile
    state["peak"] = max(state["peak"], len(state["in_flight"]))
    rt.touch(step)
    if not state["in_flight"] and step.status == StepStatus.WAITING:
        _finish(rt, step, node)


def item_done(rt: "Runtime", step: StepRun, node: NodePlan, idx: int, *, ok: bool, result: Any = None, error: dict | None = None) -> None:
    state = step.state
    item_id = state["ids"][idx]
    if item_id not in state["in_flight"]:
        return
    state["in_flight"].remove(item_id)
    state["finished"][item_id] = rt.now.isoformat()
    if ok:
        state["status"][item_id] = "completed"
        state["results"][item_id] = result
    else:
        state["status"][item_id] = "failed"
        state["errors"][item_id] = error
    rt.event("item_finished", node=node.id, scope=step.scope, step=step, payload={"item": item_id, "status": state["status"][item_id], "in_flight": len(state["in_flight"])})
    rt.touch(step)
    if not ok:
        if state["fail_fast"]:
            rt._cancel_scope(f"{step.scope}{node.id}[", reason=f"item {item_id} failed (fail_fast)")
            for other in list(state["in_flight"]):
                state["status"][other] = "cancelled"
                state["finished"][other] = rt.now.isoformat()
            state["in_flight"] = []
            for other, s in state["status"].items():
                if s == "queued":
                    state["status"][other] = "cancelled"
            message = (error or {}).get("message", "failed")
            rt._finish_container(step, node, ok=False, error={"type": "ItemFailed", "message": f"item {item_id} failed: {message}", "node": node.id, "item": item_id, "item_error": error})
            return
        blocked = sorted(_graph(state).transitive_dependents(item_id))
        for other in blocked:
            if state["status"].get(other) == "queued":
                state["status"][other] = "blocked"
        if blocked:
            rt.event("items_blocked", node=node.id, scope=step.scope, step=step, payload={"by": item_id, "items": blocked})
    fill(rt, step, node)


def summary(state: dict) -> dict:
    """The dynamic node's output: statuses, per-item report, totals and the critical path."""
    from django.utils.dateparse import parse_datetime

    by_status: dict[str, list[str]] = {}
    for item_id in state["ids"]:
        by_status.setdefault(state["status"][item_id], []).append(item_id)
    items: dict[str, dict] = {}
    measured: dict[str, float] = {}
    for item_id in state["ids"]:
        started, finished = state["started"].get(item_id), state["finished"].get(item_id)
        duration = None
        if started and finished:
            duration = round((parse_datetime(finished) - parse_datetime(started)).total_seconds(), 3)
            measured[item_id] = duration
        items[item_id] = {"status": state["status"][item_id], "duration_s": duration, "attempts": state["attempts"].get(item_id, 0)}
        if item_id in state.get("kept", []):
            items[item_id]["kept"] = True
    graph = _graph(state)
    path, length = graph.critical_path(durations={i: measured.get(i, state["durations"].get(i) or 0.0) for i in state["ids"]})
    return {
        "items": items,
        "totals": {
            "items": len(state["ids"]),
            **{name: len(by_status.get(name, [])) for name in ("completed", "failed", "blocked", "cancelled")},
            "busy_seconds": round(sum(measured.values()), 3),
        },
        "critical_path": {"items": path, "seconds": round(length, 3)},
        "completed": by_status.get("completed", []),
        "failed": by_status.get("failed", []),
        "blocked": by_status.get("blocked", []),
        "cancelled": by_status.get("cancelled", []),
        "results": state["results"],
        "errors": state["errors"],
        "peak_concurrency": state["peak"],
    }


def _finish(rt: "Runtime", step: StepRun, node: NodePlan) -> None:
    rt._finish_container(step, node, ok=True, output=summary(step.state))
