"""The dynamic node: dependency-aware fan-out with exactly `max_concurrent` items in flight.

Its step run's `state` holds what never changes once the node started (the items, their
dependencies, expected durations and priorities, the slot count). What changes lives in one
`DynamicItem` row per item: status, result, timings, and the count of its dependencies not
yet done (the incremental ready tracker of `depgraph.ReadyTracker`, kept in the rows). An item
finishing writes its own row, decrements its dependents' counters and starts the next ready
items, all under the run's row lock, so a freed slot is refilled in the same transaction that
records the completion; nothing it writes grows with the number of items.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils.dateparse import parse_datetime

from apps.workflows.definition import expressions
from apps.workflows.definition.depgraph import DependencyGraph, GraphError, ReadyTracker
from apps.workflows.definition.plan import NodePlan

from ...choices import StepStatus
from ...models import DynamicItem, StepRun
from ..redaction import redact

if TYPE_CHECKING:
    from ..runtime import Runtime

DEFAULT_MAX_CONCURRENT = 4
_TABLE = DynamicItem._meta.db_table


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
        durations[str(item[id_key])] = (
            float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        )
    priority = graph.remaining_path_lengths(default_duration=1.0)
    return {
        "items": items,
        "ids": ids,
        "deps": {str(item[id_key]): [str(d) for d in (item.get(deps_key) or [])] for item in items},
        "durations": durations,
        "priority": {str(k): v for k, v in priority.items()},
        "max_concurrent": int(spec.get("max_concurrent", DEFAULT_MAX_CONCURRENT)),
        "fail_fast": bool(spec.get("fail_fast", False)),
        "kept": [],
    }


def activate(rt: Runtime, scope: str, node: NodePlan, extra: dict | None, seed: dict | None = None) -> None:
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
    kept = {item_id: result for item_id, result in (seed or {}).items() if item_id in state["deps"]}
    state["kept"] = sorted(kept)
    step = rt.new_step(scope, node, status=StepStatus.WAITING, started_at=rt.now, state=state)
    rt.event(
        "dynamic_started",
        node=node.id,
        scope=scope,
        step=step,
        payload={"items": len(items), "max_concurrent": state["max_concurrent"], "kept": state["kept"]},
    )
    # The ready tracker's counters, seeded with the items kept from the run this one retries.
    tracker = ReadyTracker(_graph(state), completed=kept)
    dependents: dict[str, list[str]] = {item_id: [] for item_id in state["ids"]}
    for item_id, deps in state["deps"].items():
        for dep in deps:
            dependents[dep].append(item_id)
    DynamicItem.objects.bulk_create(
        [
            DynamicItem(
                step=step,
                index=idx,
                item_id=item_id,
                status=DynamicItem.Status.COMPLETED if item_id in kept else DynamicItem.Status.QUEUED,
                waiting=tracker._waiting[tracker._graph._index[item_id]],
                priority=state["priority"].get(item_id, 0.0),
                dependents=dependents[item_id],
                kept=item_id in kept,
                result=kept.get(item_id),
            )
            for idx, item_id in enumerate(state["ids"])
        ]
    )
    fill(rt, step, node, running=0)


def _running_count(step: StepRun) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {_TABLE} WHERE step_id = %s AND status = 'running'", [step.pk])
        return cursor.fetchone()[0]


def fill(rt: Runtime, step: StepRun, node: NodePlan, *, running: int | None = None) -> None:
    """Start ready items (longest remaining path first) until max_concurrent are in flight;
    finish the node when nothing runs and nothing is ready."""
    state = step.state
    running = _running_count(step) if running is None else running
    free = state["max_concurrent"] - running
    ready: list[tuple[int, int, str, int]] = []
    if free > 0:
        with connection.cursor() as cursor:
            cursor.execute(
                f"""UPDATE {_TABLE} SET status = 'running', started_at = %s, attempts = attempts + 1
                    WHERE id IN (SELECT id FROM {_TABLE} WHERE step_id = %s AND status = 'queued' AND waiting = 0
                                 ORDER BY priority DESC, index LIMIT %s)
                    RETURNING id, index, item_id, priority""",
                [rt.now, step.pk, free],
            )
            ready = sorted(cursor.fetchall(), key=lambda row: (-row[3], row[1]))
    owner = rt._deferred is None
    if owner and ready:
        rt._deferred = []  # the items' steps go in with one INSERT
    try:
        for _pk, idx, item_id, _priority in ready:
            running += 1
            rt.event(
                "item_started",
                node=node.id,
                scope=step.scope,
                step=step,
                payload={"item": item_id, "in_flight": running},
            )
            instance = f"{step.scope}{node.id}[{idx}]/"
            rt.start_scope(
                instance, node.id, {"item": state["items"][idx]}, fresh=True
            )  # a new item's scope has no steps yet
            if step.status != StepStatus.WAITING:
                return  # a synchronous failure finished the node meanwhile
    finally:
        if owner and ready:
            rt.insert_deferred()
    if running == 0 and step.status == StepStatus.WAITING:
        _finish(rt, step, node)


def child_done(
    rt: Runtime, step: StepRun, node: NodePlan, idx: int, *, ok: bool, result: Any = None, error: dict | None = None
) -> None:
    """Item `idx` finished."""
    state = step.state
    now = rt.now
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {_TABLE} SET status = %s, result = %s::jsonb, error = %s::jsonb, finished_at = %s
                WHERE step_id = %s AND index = %s AND status = 'running' RETURNING item_id, dependents""",
            [
                "completed" if ok else "failed",
                _json(redact(result) if ok else None),
                _json(None if ok else error),
                now,
                step.pk,
                idx,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return  # taken into account already (or cancelled)
    item_id, dependents = row[0], _loads(row[1])
    running = _running_count(step)
    rt.event(
        "item_finished",
        node=node.id,
        scope=step.scope,
        step=step,
        payload={"item": item_id, "status": "completed" if ok else "failed", "in_flight": running},
    )
    if ok:
        if dependents:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {_TABLE} SET waiting = waiting - 1 WHERE step_id = %s AND item_id = ANY(%s)",
                    [step.pk, dependents],
                )
    elif state["fail_fast"]:
        rt._cancel_scope(f"{step.scope}{node.id}[", reason=f"item {item_id} failed (fail_fast)")
        DynamicItem.objects.filter(step=step, status__in=["queued", "running"]).update(
            status="cancelled", finished_at=now
        )
        message = (error or {}).get("message", "failed")
        rt._finish_container(
            step,
            node,
            ok=False,
            error={
                "type": "ItemFailed",
                "message": f"item {item_id} failed: {message}",
                "node": node.id,
                "item": item_id,
                "item_error": error,
            },
        )
        return
    else:
        blocked = sorted(_graph(state).transitive_dependents(item_id))
        if blocked:
            DynamicItem.objects.filter(step=step, item_id__in=blocked, status="queued").update(status="blocked")
            rt.event(
                "items_blocked", node=node.id, scope=step.scope, step=step, payload={"by": item_id, "items": blocked}
            )
    fill(rt, step, node, running=running)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, cls=DjangoJSONEncoder)


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def snapshot(step: StepRun) -> dict:
    """The node's whole bookkeeping as one dict (the static state plus every item's row):
    `status`, `in_flight`, `results`, `errors`, `started`, `finished`, `attempts`, `peak`.
    What /state, the live page and retry-failed read."""
    state = dict(step.state or {})
    if "ids" not in state or step.pk is None:
        return state
    status, results, errors, started, finished, attempts = {}, {}, {}, {}, {}, {}
    rows = list(
        DynamicItem.objects.filter(step=step)
        .order_by("index")
        .values_list("item_id", "status", "result", "error", "started_at", "finished_at", "attempts")
    )
    if not rows and "status" in state:
        return state  # a run from before items had rows of their own
    for item_id, item_status, result, error, start, end, tries in rows:
        status[item_id] = item_status
        if item_status == "completed":
            results[item_id] = result
        if error is not None:
            errors[item_id] = error
        if start:
            started[item_id] = start.isoformat()
        if end:
            finished[item_id] = end.isoformat()
        if tries:
            attempts[item_id] = tries
    state.update(
        status=status,
        results=results,
        errors=errors,
        started=started,
        finished=finished,
        attempts=attempts,
        in_flight=[i for i, s in status.items() if s == "running"],
        peak=_peak(started, finished),
    )
    return state


def _peak(started: dict[str, str], finished: dict[str, str]) -> int:
    """The most items that were in flight at once (from their start and finish times)."""
    points = sorted(
        [(t, 1) for t in started.values()] + [(t, -1) for t in finished.values()], key=lambda p: (p[0], p[1])
    )
    level = peak = 0
    for _t, delta in points:
        level += delta
        peak = max(peak, level)
    return peak


def summary(state: dict) -> dict:
    """The dynamic node's output: statuses, per-item report, totals and the critical path."""
    by_status: dict[str, list[str]] = {}
    for item_id in state["ids"]:
        by_status.setdefault(state["status"][item_id], []).append(item_id)
    items: dict[str, dict] = {}
    measured: dict[str, float] = {}
    for item_id in state["ids"]:
        started, finished = state["started"].get(item_id), state["finished"].get(item_id)
        duration = None
        if started and finished and (start_at := parse_datetime(started)) and (end_at := parse_datetime(finished)):
            duration = round((end_at - start_at).total_seconds(), 3)
            measured[item_id] = duration
        items[item_id] = {
            "status": state["status"][item_id],
            "duration_s": duration,
            "attempts": state["attempts"].get(item_id, 0),
        }
        if item_id in state.get("kept", []):
            items[item_id]["kept"] = True
    graph = _graph(state)
    path, length = graph.critical_path(
        durations={i: measured.get(i, state["durations"].get(i) or 0.0) for i in state["ids"]}
    )
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


def _finish(rt: Runtime, step: StepRun, node: NodePlan) -> None:
    rt._finish_container(step, node, ok=True, output=summary(snapshot(step)))
