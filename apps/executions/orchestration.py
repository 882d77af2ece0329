"""Orchestration state of a run's dynamic nodes, live and after the fact.

Reads one step run per dynamic node (its `state` holds the bookkeeping) and derives
what a person asks: what is running, what waits on what, how busy the slots are,
the critical path and when it will likely finish.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.workflows.definition.depgraph import DependencyGraph

from .choices import FINISHED_STEP, ExecutionStatus
from .engine.nodes.dynamic import snapshot
from .engine.signals import SignalRejected, chain_of, send_signal
from .models import Execution, StepRun


def _t(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def dynamic_state(step: StepRun, now: datetime | None = None) -> dict[str, Any]:
    state = snapshot(step)
    now = now or timezone.now()
    end = step.finished_at or now
    ids: list[str] = state.get("ids", [])
    status: dict[str, str] = dict(state.get("status", {}))
    in_flight = list(state.get("in_flight", []))
    if step.status in FINISHED_STEP:
        # A node that ended (its run cancelled or failed around it) has nothing queued or running any
        # more, whatever its last bookkeeping says: those items were cancelled with it.
        status = {i: ("cancelled" if s in ("queued", "running") else s) for i, s in status.items()}
        status.update({i: "cancelled" for i in state.get("ids", []) if i not in status})
        in_flight = []
    deps: dict[str, list[str]] = state.get("deps", {})
    expected: dict[str, float | None] = state.get("durations", {})
    items = []
    measured: list[float] = []
    busy = 0.0
    for item_id in ids:
        started, finished = _t(state.get("started", {}).get(item_id)), _t(state.get("finished", {}).get(item_id))
        duration = None
        if started:
            duration = ((finished or end) - started).total_seconds()
            busy += duration
            if finished and status.get(item_id) == "completed":
                measured.append(duration)
        items.append(
            {
                "id": item_id,
                "status": status.get(item_id, "queued"),
                "depends_on": deps.get(item_id, []),
                "waiting_on": [d for d in deps.get(item_id, []) if status.get(d) != "completed"],
                "started_at": started.isoformat() if started else None,
                "finished_at": finished.isoformat() if finished else None,
                "duration_s": round(duration, 3) if duration is not None else None,
                "expected_s": expected.get(item_id),
                "attempts": state.get("attempts", {}).get(item_id, 0),
                "error": (state.get("errors", {}).get(item_id) or {}).get("message"),
            }
        )
    by_status: dict[str, list[str]] = {
        s: [] for s in ("queued", "running", "completed", "failed", "blocked", "cancelled")
    }
    for item in items:
        by_status.setdefault(item["status"], []).append(item["id"])
    slots = int(state.get("max_concurrent", 1))
    elapsed = max(0.0, (end - step.started_at).total_seconds()) if step.started_at else 0.0
    fallback = (sum(measured) / len(measured)) if measured else 1.0
    durations = {i: (expected.get(i) if expected.get(i) is not None else fallback) for i in ids}
    graph = DependencyGraph()
    for item_id in ids:
        graph.add_node(item_id, durations[item_id])
    for item_id, ds in deps.items():
        for d in ds:
            graph.add_edge(d, item_id)
    path, length = graph.critical_path()
    ready_waiting = [i["id"] for i in items if i["status"] == "queued" and not i["waiting_on"]]
    waiting_deps = [
        {"id": i["id"], "waiting_on": i["waiting_on"]} for i in items if i["status"] == "queued" and i["waiting_on"]
    ]
    # ETA: list-schedule what is left (running items with their remaining expected time).
    eta = None
    if step.finished_at is None:
        remaining = DependencyGraph()
        left = [i for i in items if i["status"] in ("queued", "running")]
        left_ids = {i["id"] for i in left}
        for item in left:
            guess = durations[item["id"]]
            if item["status"] == "running" and item["duration_s"] is not None:
                guess = max(0.0, guess - item["duration_s"])
            remaining.add_node(item["id"], guess)
        for item in left:
            for d in item["depends_on"]:
                if d in left_ids:
                    remaining.add_edge(d, item["id"])
        makespan = remaining.list_schedule(slots=slots).makespan if left else 0.0
        eta = (now + timedelta(seconds=makespan)).isoformat()
    return {
        "node": step.node_id,
        "scope": step.scope,
        "status": step.status,
        "items_total": len(ids),
        "counts": {k: len(v) for k, v in by_status.items()},
        "by_status": by_status,
        "concurrency": {"current": len(in_flight), "max": slots, "peak": state.get("peak", 0)},
        "utilisation": round(busy / (slots * elapsed), 3) if elapsed > 0 else 0.0,
        "queue": {"ready": ready_waiting, "waiting_on_dependencies": waiting_deps},
        "critical_path": {
            "items": path,
            "expected_s": round(length, 3),
            "completed": sum(1 for i in path if status.get(i) == "completed"),
            "progress": round(sum(1 for i in path if status.get(i) == "completed") / len(path), 3) if path else 1.0,
        },
        "elapsed_s": round(elapsed, 3),
        "eta": eta,
        "items": items,
    }


def execution_state(execution: Execution) -> dict[str, Any]:
    now = timezone.now()
    latest: dict[tuple[str, str], StepRun] = {}
    for step in StepRun.objects.filter(execution=execution, node_type="dynamic").order_by("id"):
        latest[(step.scope, step.node_id)] = step
    counts: dict[str, int] = {}
    for status in StepRun.objects.filter(execution=execution).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return {
        "execution": execution.pk,
        "status": execution.status,
        "steps": counts,
        "dynamic": [dynamic_state(step, now) for step in latest.values()],
        "children": list(
            execution.children.values("id", "status", "workflow__slug", "parent_step__node_id").order_by("id")
        ),
    }


def send_signal_to_chain(execution: Execution, name: str, payload: Any, *, actor: str) -> tuple[Execution, dict]:
    """Send a signal to `execution`, or, once it has continued as new, to the current run of its chain.

    A client keeps the id of the run it started; with continue-as-new that run closes as `continued`
    every N iterations, and a signal addressed to it would otherwise be refused as "finished" (also
    when it races the hand-over). Returns the run that took it and send_signal's answer.
    """
    target = execution
    for _ in range(5):
        if target.status == ExecutionStatus.CONTINUED:
            target = chain_of(target)[-1]
            target.refresh_from_db()
        try:
            return target, send_signal(target, name, payload, actor=actor)
        except SignalRejected as exc:
            if exc.status != 409:
                raise
            target.refresh_from_db(fields=["status"])
            if target.status != ExecutionStatus.CONTINUED:
                raise
    return target, send_signal(target, name, payload, actor=actor)
