"""View models for the execution pages: node statuses for the graph, status panels, replay state.

The graph itself is drawn by apps.workflows.definition.graph.

Plain functions over models and definitions; the views, the live-update consumer and the
polling endpoint all render through these, so a page and its live fragments always agree.
Everything shown to a user passes through `redact` first.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.safestring import SafeString, mark_safe

from apps.workflows.definition.depgraph import DependencyGraph, GraphError
from apps.workflows.definition.graph import find_node, iter_nodes

from .choices import FINISHED_EXECUTION, ExecutionStatus, StepStatus
from .engine.nodes.dynamic import snapshot
from .engine.redaction import redact
from .engine.signals import chain_of
from .models import Execution, ExecutionEvent, StepRun
from .orchestration import dynamic_state

#
# Graphs
#

# Node types a later feature adds; their panels render only when a definition has them.
DYNAMIC_TYPES = {"dynamic"}
SIGNAL_TYPES = {"signal_wait", "approval"}


# Step statuses as the graph draws them.
GRAPH_STATUS: dict[str, str] = {
    StepStatus.SCHEDULED: "queued",
    StepStatus.PENDING: "queued",
    StepStatus.RUNNING: "running",
    StepStatus.WAITING: "waiting",
    StepStatus.COMPLETED: "completed",
    StepStatus.FAILED: "failed",
    StepStatus.CANCELLED: "cancelled",
    StepStatus.SKIPPED: "skipped",
}
# When a node ran several times (loop iterations, branches), the most telling status wins.
_PRIORITY = ["running", "waiting", "queued", "failed", "completed", "cancelled", "skipped", "pending"]


def merge_status(current: str | None, new: str) -> str:
    if current is None:
        return new
    return current if _PRIORITY.index(current) <= _PRIORITY.index(new) else new


def node_statuses(steps: Iterable[StepRun]) -> dict[str, str]:
    """node id -> graph status, from the latest attempt of each node in each scope."""
    latest: dict[tuple[str, str], StepRun] = {}
    for step in steps:
        key = (step.scope, step.node_id)
        if key not in latest or step.pk > latest[key].pk:
            latest[key] = step
    out: dict[str, str] = {}
    for (_scope, node_id), step in latest.items():
        out[node_id] = merge_status(out.get(node_id), GRAPH_STATUS.get(step.status, "pending"))
    return out


#
# Execution status panel
#


@dataclass
class StatusPanel:
    execution: Execution
    counts: list[tuple[str, int]]
    total_steps: int
    elapsed_ms: int | None
    eta_ms: int | None
    has_dynamic: bool
    has_signals: bool
    active: bool
    eta_basis: str = "median of recent runs"
    typical_ms: int | None = None  # the median of recent runs, when there are some (past it: no ETA)


def _ms(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() * 1000))


def typical_duration_ms(execution: Execution) -> int | None:
    """Median duration of this workflow's last 20 completed runs, for the ETA."""
    rows = (
        Execution.objects.filter(
            workflow_id=execution.workflow_id,
            status=ExecutionStatus.COMPLETED,
            started_at__isnull=False,
            finished_at__isnull=False,
        )
        .exclude(pk=execution.pk)
        .order_by("-created_at")
        .values_list("started_at", "finished_at")[:20]
    )
    durations = [_ms(f - s) for s, f in rows if s and f]  # both are non-null by the filter
    return int(median(durations)) if durations else None


def status_panel(
    execution: Execution, steps: list[StepRun], *, now: datetime | None = None, with_eta: bool = True
) -> StatusPanel:
    """The panel's figures; `with_eta=False` leaves the ETA out (and its query: live updates of what
    changed do not resend it, the page counts it down)."""
    now = now or timezone.now()
    counter = Counter(step.status for step in steps)
    order = [s for s in StepStatus.values if counter.get(s)]
    types = {str(node.get("type")) for node, _p, _w in iter_nodes(execution.definition.get("nodes", []))}
    elapsed = None
    if execution.started_at:
        elapsed = _ms((execution.finished_at or now) - execution.started_at)
    active = execution.status not in FINISHED_EXECUTION
    eta = None
    typical = None
    basis = "median of recent runs"
    if with_eta and active and elapsed is not None:
        typical = typical_duration_ms(execution)
        if typical is not None and typical > elapsed:
            eta = typical - elapsed
        # Past the median "0 ms left" would be wrong (a run may wait hours for an approval): no ETA.
    if with_eta and active and eta is None and typical is None:
        # No history yet: a dynamic node knows what is left and how long items take.
        for step in steps:
            if step.node_type == "dynamic" and step.status == StepStatus.WAITING and "ids" in (step.state or {}):
                finish = dynamic_state(step, now).get("eta")
                if finish:
                    if finish_at := parse_datetime(finish):
                        eta, basis = _ms(finish_at - now), "schedule of the items left"
                break
    return StatusPanel(
        execution=execution,
        counts=[(s, counter[s]) for s in order],
        total_steps=len(steps),
        elapsed_ms=elapsed,
        eta_ms=eta,
        has_dynamic=bool(types & DYNAMIC_TYPES),
        has_signals=bool(types & SIGNAL_TYPES),
        active=active,
        eta_basis=basis,
        typical_ms=typical,
    )


def execution_steps(execution: Execution) -> list[StepRun]:
    return list(StepRun.objects.filter(execution=execution).order_by("id"))


def item_labels(steps: list[StepRun]) -> dict[int, str]:
    """Dynamic items are shown by their item id ("build › core-utils"), not their scope."""
    ids_of = {
        (s.scope, s.node_id): s.state.get("ids", [])
        for s in steps
        if s.node_type == "dynamic" and isinstance(s.state, dict)
    }
    labels: dict[int, str] = {}
    for s in steps:
        if not s.node_id.endswith(":item") or not s.scope.endswith("]/"):
            continue
        owner = s.node_id[: -len(":item")]
        head, _, index = s.scope[:-2].rpartition("[")
        parent = head[: -len(owner)] if head.endswith(owner) else head
        ids = ids_of.get((parent, owner), [])
        if index.isdigit() and int(index) < len(ids):
            labels[s.pk] = f"{owner} › {ids[int(index)]}"
    return labels


def tree_order(steps: list[StepRun]) -> list[StepRun]:
    """Steps as a tree: each step followed by the steps nested in it (loop iterations and
    branches in index order), attempts and siblings in the order they were created."""
    by_scope: dict[str, list[StepRun]] = {}
    for step in sorted(steps, key=lambda s: s.pk or 0):
        by_scope.setdefault(step.scope, []).append(step)
    children: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for scope in by_scope:
        if not scope:
            continue
        head, _, index = scope[:-2].rpartition("[")  # "a[1]/b[2]/" -> ("a[1]/b", "2")
        parent, _, node_id = head.rpartition("/")
        parent = f"{parent}/" if parent else ""
        children.setdefault((parent, node_id), []).append((int(index) if index.isdigit() else 0, scope))
    ordered: list[StepRun] = []
    seen: set[str] = set()

    def emit(scope: str) -> None:
        if scope in seen:
            return
        seen.add(scope)
        emitted_nodes: set[str] = set()
        for step in by_scope.get(scope, []):
            ordered.append(step)
            if step.node_id in emitted_nodes:
                continue
            emitted_nodes.add(step.node_id)
            for _, child in sorted(children.get((scope, step.node_id), [])):
                emit(child)

    emit("")
    for scope in by_scope:  # anything whose parent step is gone, at the end rather than lost
        emit(scope)
    return ordered


def step_rows(steps: list[StepRun]) -> list[dict]:
    """The step table: one row per step run in tree order, secrets redacted."""
    labels = item_labels(steps)
    steps = tree_order(steps)
    return [
        {
            "step": s,
            "label": labels.get(s.pk),
            "key": s.key,
            "log_count": len(s.logs or []),
            "error": redact(s.error) if s.error else None,
        }
        for s in steps
    ]


def timeline_rows(events: Iterable[ExecutionEvent]) -> list[dict]:
    rows = []
    for event in events:
        payload = redact(event.payload or {})
        rows.append({"event": event, "summary": summarize_event(event.type, payload), "payload": payload})
    return rows


def summarize_event(type_: str, payload: dict) -> str:
    """A one-line description of an event for the timeline."""
    if type_ in ("step_failed", "execution_failed", "error_handled") and isinstance(payload.get("error"), dict):
        error = payload["error"]
        return f"{error.get('type', 'Error')}: {error.get('message', '')}"
    if type_ == "step_retry_scheduled":
        return f"attempt {payload.get('attempt')} in {payload.get('delay_seconds')} s"
    if type_ == "step_scheduled":
        return f"{payload.get('activity', '')} attempt {payload.get('attempt', 1)}".strip()
    if type_ == "variables_updated":
        return "set " + ", ".join(sorted((payload.get("set") or {}).keys()))
    if type_ == "execution_started":
        return f"trigger {payload.get('trigger', 'manual')}"
    if type_ == "step_cancelled":
        return str(payload.get("reason", ""))
    if type_ == "loop_started":
        return (
            f"{payload.get('mode', '')} over {payload.get('items')} items"
            if payload.get("items") is not None
            else str(payload.get("mode", ""))
        )
    if type_ in ("item_started", "item_finished"):
        state = f" {payload['status']}" if payload.get("status") else ""
        return f"item {payload.get('item', '')}{state}, {payload.get('in_flight', 0)} in flight"
    if type_ == "dynamic_started":
        return f"{payload.get('items', 0)} items, at most {payload.get('max_concurrent', '?')} at once"
    if type_ in ("signal_received", "execution_paused", "execution_resumed") and payload.get("name"):
        return str(payload["name"])
    if type_ == "condition_evaluated":
        chosen = payload.get("chosen") or payload.get("to") or payload.get("next")
        if not chosen:
            return "no case held and there is no default"
        case = payload.get("case")
        return f"took {chosen} " + (f"(case {case + 1})" if isinstance(case, int) else "(default)")
    return ""


def failed_step(execution: Execution, steps: list[StepRun]) -> StepRun | None:
    """The step the run failed on: the node named by its error, latest attempt first."""
    node = (execution.error or {}).get("node")
    failed = [s for s in steps if s.status == StepStatus.FAILED]
    if node:
        named = [s for s in failed if s.node_id == node]
        if named:
            # The innermost activation carries the input that broke it; prefer top-level scopes' latest.
            return named[-1]
    return failed[-1] if failed else None


#
# Replay
#


@dataclass
class ReplayState:
    seq: int
    status: str
    variables: dict = field(default_factory=dict)
    steps: dict = field(default_factory=dict)
    node_statuses: dict = field(default_factory=dict)

    def copy(self) -> ReplayState:
        return ReplayState(self.seq, self.status, dict(self.variables), dict(self.steps), dict(self.node_statuses))


EVENT_NODE_STATUS = {
    "step_scheduled": "queued",
    "step_retry_scheduled": "queued",
    "step_started": "running",
    "step_completed": "completed",
    "step_kept": "completed",
    "step_failed": "failed",
    "step_skipped": "skipped",
    "step_cancelled": "cancelled",
    "loop_started": "waiting",
    "parallel_started": "waiting",
    "timer_started": "waiting",
}
EVENT_RUN_STATUS = {
    "execution_started": "running",
    "execution_completed": "completed",
    "execution_failed": "failed",
    "execution_cancelled": "cancelled",
    "execution_continued": "continued",
}


def apply_event(state: ReplayState, event: ExecutionEvent) -> ReplayState:
    """The state after `event` (a new object; `state` is left as it was)."""
    new = state.copy()
    new.seq = event.seq
    payload = event.payload or {}
    if event.type == "execution_started":
        new.variables = dict(payload.get("variables") or {})
    elif event.type == "variables_updated":
        new.variables.update(payload.get("set") or {})
    if event.type in ("step_completed", "step_kept") and event.node_id:
        new.steps[f"{event.scope}{event.node_id}"] = payload.get("output")
    if event.type in EVENT_NODE_STATUS and event.node_id:
        new.node_statuses[event.node_id] = EVENT_NODE_STATUS[event.type]
    if event.type in EVENT_RUN_STATUS:
        new.status = EVENT_RUN_STATUS[event.type]
    return new


def replay_states(events: list[ExecutionEvent], upto: int) -> tuple[ReplayState, ReplayState]:
    """(state before the event at index `upto`, state after it)."""
    state = ReplayState(seq=0, status="pending")
    before = state
    for event in events[: upto + 1]:
        before = state
        state = apply_event(state, event)
    return before, state


def _flat(section: str, data: dict) -> dict[str, Any]:
    return {f"{section}.{key}": value for key, value in (data or {}).items()}


def diff_states(before: ReplayState, after: ReplayState) -> list[dict]:
    """What changed between two states: rows of {key, kind (added/removed/changed), before, after}."""
    # Redact whole documents first: a secret is recognised by its key, which flattening would hide.
    old = {
        **_flat("vars", redact(before.variables)),
        **_flat("steps", redact(before.steps)),
        **_flat("status", before.node_statuses),
        "run.status": before.status,
    }
    new = {
        **_flat("vars", redact(after.variables)),
        **_flat("steps", redact(after.steps)),
        **_flat("status", after.node_statuses),
        "run.status": after.status,
    }
    rows = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            rows.append({"key": key, "kind": "added", "before": None, "after": new[key]})
        elif key not in new:
            rows.append({"key": key, "kind": "removed", "before": old[key], "after": None})
        elif old[key] != new[key]:
            rows.append({"key": key, "kind": "changed", "before": old[key], "after": new[key]})
    return rows


def replay_document(execution: Execution, events: list[ExecutionEvent]) -> dict:
    """The replay export: the run, its definition and every event with the state after it (redacted)."""
    state = ReplayState(seq=0, status="pending")
    out_events = []
    for event in events:
        state = apply_event(state, event)
        out_events.append(
            {
                "seq": event.seq,
                "type": event.type,
                "node_id": event.node_id,
                "scope": event.scope,
                "actor": event.actor,
                "at": event.created_at.isoformat(),
                "payload": redact(event.payload),
                "state": {
                    "status": state.status,
                    "variables": redact(state.variables),
                    "steps": redact(state.steps),
                    "nodes": state.node_statuses,
                },
            }
        )
    return {
        "format": "workflow-builder-replay/1",
        "execution": {
            "id": execution.pk,
            "workflow": {"id": execution.workflow_id, "name": execution.workflow.name},
            "status": execution.status,
            "trigger": execution.trigger,
            "input": redact(execution.input),
            "output": redact(execution.output),
            "error": redact(execution.error),
            "started_at": execution.started_at.isoformat() if execution.started_at else None,
            "finished_at": execution.finished_at.isoformat() if execution.finished_at else None,
        },
        "definition": redact(execution.definition),
        "events": out_events,
    }


def pretty(value: Any) -> str:
    """Indented JSON for <pre> blocks (already redacted by the caller)."""
    try:
        return json.dumps(value, indent=2, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


#
# Dynamic nodes, signals, continue-as-new
#


@dataclass
class DynamicPanel:
    """One dynamic node's activation: slots, item counts, the queue and critical-path progress."""

    step: StepRun
    in_flight: int
    max_concurrent: int
    peak: int
    counts: list[tuple[str, int]]
    total: int
    waiting_on_deps: list[dict]  # queued items whose dependencies are not all done: {id, missing}
    ready: int  # queued items whose dependencies are done (waiting for a free slot)
    critical_done: int
    critical_total: int
    chart: SafeString


def dynamic_panels(steps: list[StepRun], events: list[ExecutionEvent] | None = None) -> list[DynamicPanel]:

    panels = []
    for step in steps:
        if step.node_type != "dynamic":
            continue
        state = snapshot(step)
        if "status" not in state:
            continue
        status: dict[str, str] = state.get("status", {})
        deps: dict[str, list[str]] = state.get("deps", {})
        done = {i for i, s in status.items() if s == "completed"}
        queued = [i for i in state.get("ids", status) if status.get(i) == "queued"]
        waiting = [{"id": i, "missing": [d for d in deps.get(i, []) if d not in done]} for i in queued]
        waiting_on = [w for w in waiting if w["missing"]]
        critical: list[str] = []
        try:
            graph = DependencyGraph()
            for item_id in state.get("ids", []):
                graph.add_node(item_id, (state.get("durations") or {}).get(item_id))
            for item_id, item_deps in deps.items():
                for dep in item_deps:
                    graph.add_edge(dep, item_id)
            critical, _length = graph.critical_path(default_duration=1.0)
        except (GraphError, KeyError, ValueError):
            critical = []
        counter = Counter(status.values())
        panels.append(
            DynamicPanel(
                step=step,
                in_flight=len(state.get("in_flight", [])),
                max_concurrent=int(state.get("max_concurrent", 0) or 0),
                peak=int(state.get("peak", 0) or 0),
                counts=sorted(counter.items()),
                total=len(status),
                waiting_on_deps=waiting_on[:20],
                ready=len(waiting) - len(waiting_on),
                critical_done=sum(1 for i in critical if i in done),
                critical_total=len(critical),
                chart=concurrency_chart(step, events or []),
            )
        )
    return panels


def concurrency_chart(
    step: StepRun, events: list[ExecutionEvent], *, width: int = 480, height: int = 120
) -> SafeString:
    """Items in flight over time for one dynamic step, as an SVG step chart (from its item events)."""
    points = [
        (e.created_at, int((e.payload or {}).get("in_flight", 0)))
        for e in events
        if e.step_id == step.pk and e.type in ("item_started", "item_finished")
    ]
    if len(points) < 2:
        return mark_safe("")
    t0, t1 = points[0][0], points[-1][0]
    span = max((t1 - t0).total_seconds(), 0.001)
    top = max(max(v for _t, v in points), int((step.state or {}).get("max_concurrent", 1) or 1))
    pad_l, pad_b, pad_t = 28, 18, 8
    plot_w, plot_h = width - pad_l - 6, height - pad_b - pad_t

    def x(t: datetime) -> float:
        return pad_l + (t - t0).total_seconds() / span * plot_w

    def y(v: int) -> float:
        return pad_t + plot_h - v / top * plot_h

    path = [f"M{x(points[0][0]):.1f},{y(0):.1f}"]
    previous = 0
    for t, v in points:
        path.append(f"L{x(t):.1f},{y(previous):.1f} L{x(t):.1f},{y(v):.1f}")
        previous = v
    limit = int((step.state or {}).get("max_concurrent", 0) or 0)
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" '
        f'aria-label="Items in flight over {span:.1f} s, at most {top}">'
        f'<line class="axis" x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 6}" y2="{pad_t + plot_h}"/>'
        f'<line class="axis" x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + plot_h}"/>'
        + (
            f'<line class="limit" x1="{pad_l}" y1="{y(limit):.1f}" x2="{width - 6}" y2="{y(limit):.1f}"/>'
            if limit
            else ""
        )
        + f'<path class="series" d="{" ".join(path)}"/>'
        f'<text class="tick" x="{pad_l - 4}" y="{y(top) + 4:.1f}" text-anchor="end">{top}</text>'
        f'<text class="tick" x="{pad_l - 4}" y="{y(0) + 4:.1f}" text-anchor="end">0</text>'
        f'<text class="tick" x="{width - 6}" y="{height - 4}" text-anchor="end">{span:.1f} s</text>'
        "</svg>"
    )
    return mark_safe(svg)  # noqa: S308 - numbers only


def declared_signals(execution: Execution) -> list[dict]:
    return [s for s in (execution.definition or {}).get("signals", []) if isinstance(s, dict) and s.get("name")]


def continue_chain(execution: Execution) -> list[Execution]:
    """The continue-as-new chain this run belongs to (just the run when it is alone)."""
    if not execution.continued_from_id and not Execution.objects.filter(continued_from_id=execution.pk).exists():
        return [execution]

    ids = [e.pk for e in chain_of(execution)]
    by_id = Execution.objects.in_bulk(ids)
    return [by_id[i] for i in ids if i in by_id]


#
# A dynamic node's dependency graph (the live page's drawing and GET …/dynamic/<node_id>)
#

DYNAMIC_ITEM_STATUSES = ("queued", "ready", "running", "completed", "failed", "blocked", "cancelled")


def dynamic_graph(
    execution: Execution, node_id: str, *, steps: list[StepRun] | None = None, critical: bool = True
) -> dict | None:
    """Everything known about the items of dynamic node `node_id` in `execution`, as plain JSON data:
    ``{"node", "step", "status", "max_concurrent", "in_flight", "counts", "critical_path", "items": [
    {"id", "index", "status", "depends_on", "started_at", "finished_at", "duration_s", "attempts",
    "error", "step", "child_execution"}]}``. Item status is one of DYNAMIC_ITEM_STATUSES ("ready" is a
    queued item whose dependencies are all completed). None when the definition has no dynamic node
    `node_id`; before the node starts, ``status`` is "not_started" and there are no items.

    This is the one place the UI and the API read the dynamic node's bookkeeping (the dynamic
    StepRun's `state` and its DynamicItem rows, through engine/nodes/dynamic.snapshot).
    `critical=False` skips the critical path (live updates do not redraw it).
    """

    node = find_node(execution.definition or {}, node_id)
    if node is None or node.get("type") != "dynamic":
        return None
    steps = execution_steps(execution) if steps is None else steps
    candidates = [
        s
        for s in steps
        if s.node_id == node_id and s.node_type == "dynamic" and isinstance(s.state, dict) and "ids" in s.state
    ]
    out: dict[str, Any] = {
        "node": node_id,
        "step": None,
        "status": "not_started",
        "max_concurrent": node.get("max_concurrent"),
        "in_flight": 0,
        "counts": {},
        "critical_path": {"items": [], "seconds": 0.0},
        "items": [],
    }
    if not candidates:
        return out
    # The top-level activation first (a dynamic node inside a loop has one per iteration: the latest).
    step = min(candidates, key=lambda s: (len(s.scope), -s.pk))
    state = snapshot(step)  # the node's static state and one row per item
    ids: list[str] = [str(i) for i in state.get("ids", [])]
    status: dict[str, str] = state.get("status", {})
    deps: dict[str, list[str]] = state.get("deps", {})
    started, finished = state.get("started", {}), state.get("finished", {})
    errors, attempts = state.get("errors", {}), state.get("attempts", {})
    prefix = f"{step.scope}{node_id}["
    item_steps: dict[int, StepRun] = {}
    for s in steps:
        if s.scope.startswith(prefix) and s.scope.endswith("]/") and "/" not in s.scope[len(prefix) : -1]:
            digits = s.scope[len(prefix) : -2]
            if digits.isdigit() and (int(digits) not in item_steps or s.pk > item_steps[int(digits)].pk):
                item_steps[int(digits)] = s
    # Only items that run a child workflow have child runs to look up.
    children = (
        dict(
            Execution.objects.filter(parent_step_id__in=[s.pk for s in item_steps.values()]).values_list(
                "parent_step_id", "pk"
            )
        )
        if item_steps and node.get("workflow")
        else {}
    )
    measured: dict[str, float] = {}
    items = []
    for index, item_id in enumerate(ids):
        item_status = status.get(item_id, "queued")
        if item_status == "queued" and all(status.get(d) == "completed" for d in deps.get(item_id, [])):
            item_status = "ready"
        duration = None
        if started.get(item_id) and finished.get(item_id):
            begin, end = parse_datetime(started[item_id]), parse_datetime(finished[item_id])
            if begin and end:
                duration = round((end - begin).total_seconds(), 3)
                measured[item_id] = duration
        item_step = item_steps.get(index)
        items.append(
            {
                "id": item_id,
                "index": index,
                "status": item_status,
                "depends_on": list(deps.get(item_id, [])),
                "started_at": started.get(item_id),
                "finished_at": finished.get(item_id),
                "duration_s": duration,
                "attempts": attempts.get(item_id, 0),
                "error": redact(errors[item_id]) if item_id in errors else None,
                "step": item_step.pk if item_step else None,
                "child_execution": children.get(item_step.pk) if item_step else None,
            }
        )
    try:
        if not critical:
            raise GraphError("not asked for")
        graph = DependencyGraph()
        durations = state.get("durations") or {}
        for item_id in ids:
            graph.add_node(item_id)
        for item_id in ids:
            for dep in deps.get(item_id, []):
                graph.add_edge(dep, item_id)
        # Measured where an item ran; else its expected duration, else the typical measured one;
        # blocked and cancelled items will not run and weigh nothing.
        typical = median(measured.values()) if measured else 1.0
        weights = {
            i: measured[i]
            if i in measured
            else 0.0
            if status.get(i) in ("blocked", "cancelled")
            else float(durations.get(i) or typical)
            for i in ids
        }
        path, length = graph.critical_path(default_duration=typical, durations=weights)
    except (GraphError, KeyError, ValueError):
        path, length = [], 0.0
    out.update(
        step=step.pk,
        status=step.status,
        max_concurrent=int(state.get("max_concurrent", 0) or 0),
        in_flight=len(state.get("in_flight", [])),
        counts=dict(Counter(i["status"] for i in items)),
        critical_path={"items": path, "seconds": round(length, 3)},
        items=items,
    )
    return out


def dynamic_node_ids(definition: dict) -> list[str]:
    return [
        str(n.get("id"))
        for n, _p, _w in iter_nodes((definition or {}).get("nodes", []))
        if n.get("type") == "dynamic" and n.get("id")
    ]


def dynamic_changes(execution: Execution, graphs: list[dict], after: int, upto: int) -> dict[str, dict[str, str]]:
    """node id -> {item id: status} for the items whose status may have changed in events
    (after, upto]: the items that started or finished, the dependents of finished ones (now ready,
    blocked or cancelled) and, after a failure or the node's end, every blocked or cancelled item."""
    if not graphs:
        return {}
    events = ExecutionEvent.objects.filter(
        execution=execution, seq__gt=after, seq__lte=upto, node_id__in=[g["node"] for g in graphs]
    ).only("type", "node_id", "payload")
    touched: dict[str, set[str]] = {}
    sweep: set[str] = set()
    for event in events:
        payload = event.payload or {}
        if event.type in ("item_started", "item_finished") and payload.get("item") is not None:
            touched.setdefault(event.node_id, set()).add(str(payload["item"]))
            if payload.get("status") in ("failed", "cancelled"):
                sweep.add(event.node_id)
        elif event.type in ("dynamic_started", "items_blocked", "step_completed", "step_failed", "step_cancelled"):
            sweep.add(event.node_id)
    out: dict[str, dict[str, str]] = {}
    for graph in graphs:
        names = touched.get(graph["node"], set())
        if not names and graph["node"] not in sweep:
            continue
        dependents: dict[str, list[str]] = {}
        for item in graph["items"]:
            for dep in item["depends_on"]:
                dependents.setdefault(dep, []).append(item["id"])
        wanted = set(names)
        for name in names:
            wanted.update(dependents.get(name, []))
        by_id = {i["id"]: i for i in graph["items"]}
        changes = {i: by_id[i]["status"] for i in wanted if i in by_id}
        if graph["node"] in sweep:
            changes.update(
                {i["id"]: i["status"] for i in graph["items"] if i["status"] in ("blocked", "cancelled", "failed")}
            )
        if changes:
            out[graph["node"]] = changes
    return out
