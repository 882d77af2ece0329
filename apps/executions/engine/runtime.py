"""The orchestrator's working memory for one advance of one run.

A `Runtime` is built inside a transaction that holds the execution's row lock. It
reads the step runs it needs, decides what happens next from the plan, and
collects the writes (new step runs, events) and the side effects to perform after
commit (Celery dispatch, revocations, live updates). Nothing here talks to Celery
directly: `orchestrator.py` does that once the transaction has committed.

Scope instances: "" is the top level; "loop[3]/" is iteration 3 of node `loop`;
"par[1]/" branch 1 of node `par`; they nest ("loop[3]/par[1]/").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from apps.workflows.definition import expressions
from apps.workflows.definition.plan import NodePlan, Plan

from ..choices import ACTIVE_STEP, ExecutionStatus, StepStatus
from ..models import Execution, ExecutionEvent, StepRun, Timer
from . import hooks, store
from .common import (  # noqa: F401  (re-exported)
    DEFAULT_MAX_ITERATIONS,
    MAX_WORKER_LOSSES,
    SEGMENT,
    SMALL_SCOPE,
    WORKER_LOST,
    backoff_seconds,
    error_dict,
    parent_scope,
)
from .family import cancel_children_of_steps, notify_parent
from .nodes import NODE_TYPES
from .redaction import redact

_STEP_REF = re.compile(r"^\$\.steps\.([A-Za-z_][\w\-]*)")


def step_refs(plan: Plan, node: NodePlan) -> set[str] | None:
    """The node ids whose steps `node`'s spec refers to through `$.steps.<id>` (None: it reads
    `$.steps` as a whole, so every step of the scope is needed). Memoised on the plan."""
    cache = plan.__dict__.setdefault("_step_refs", {})
    if node.id not in cache:
        found: set[str] = set()
        for path in expressions.references_in(node.spec):
            if not path.startswith("$.steps"):
                continue
            m = _STEP_REF.match(path)
            if m is None:
                cache[node.id] = None
                break
            found.add(m.group(1))
        else:
            cache[node.id] = found
    return cache[node.id]


class _StepsView(dict):
    """`$.steps` of a context, read on demand: each node's latest finished step in the innermost
    scope instance that has one. Iterating it reads the whole chain of scopes."""

    def __init__(self, rt: Runtime, chain: list[str]):
        super().__init__()
        self._rt = rt
        self._chain = chain
        self._whole = False

    @staticmethod
    def _entry(step: StepRun) -> dict:
        if step.status == StepStatus.COMPLETED:
            return {"output": step.output, "status": step.status}
        return {"output": None, "status": step.status, "error": step.error}

    def _find(self, node_id: Any) -> dict | None:
        if not isinstance(node_id, str):
            return None
        if dict.__contains__(self, node_id):
            return dict.__getitem__(self, node_id)
        if self._whole:
            return None
        for instance in reversed(self._chain):
            for step in reversed(self._rt.steps_of(instance, node_id)):
                if step.status in (StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED):
                    entry = self._entry(step)
                    dict.__setitem__(self, node_id, entry)
                    return entry
        return None

    def _materialise(self) -> None:
        if self._whole:
            return
        whole: dict[str, dict] = {}
        for instance in self._chain:
            for step in self._rt.steps_in(instance):
                if step.status in (StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED):
                    whole[step.node_id] = self._entry(step)
        dict.clear(self)
        dict.update(self, whole)
        self._whole = True

    def __contains__(self, key: object) -> bool:
        return self._find(key) is not None

    def __getitem__(self, key: Any) -> Any:
        found = self._find(key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: Any, default: Any = None) -> Any:
        found = self._find(key)
        return default if found is None else found

    def __iter__(self):
        self._materialise()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._materialise()
        return dict.__len__(self)

    def keys(self):
        self._materialise()
        return dict.keys(self)

    def values(self):
        self._materialise()
        return dict.values(self)

    def items(self):
        self._materialise()
        return dict.items(self)

    def __repr__(self) -> str:
        self._materialise()
        return dict.__repr__(self)


@dataclass
class SideEffects:
    dispatch: list[StepRun] = field(default_factory=list)
    chords: list[list[StepRun]] = field(default_factory=list)
    inline: list[StepRun] = field(default_factory=list)
    revoke: list[str] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    events: list[ExecutionEvent] = field(default_factory=list)
    # Sticky steps with a timeout: their deadline check is scheduled after commit.
    deadlines: list[StepRun] = field(default_factory=list)
    # The run's Celery queue ("" the default one): its steps are sent there.
    queue: str = ""


class Runtime:
    class Lost(Exception):
        """A finished step changed under the advance (its conditional write matched nothing)."""

    def __init__(self, execution: Execution, plan: Plan, *, allow_inline: bool = False, sticky: Any = None):
        self.ex = execution
        self.plan = plan
        self.allow_inline = allow_inline
        # orchestrator.Sticky: the next worker step may be claimed for this worker (once).
        self.sticky = sticky
        # Finished steps whose write must still find them in the status they were read in.
        self._guarded: dict[int, str] = {}
        self.now = timezone.now()
        self.effects = SideEffects()
        self._scope_cache: dict[str, list[StepRun]] = {}
        self._partial: dict[str, dict[str, list[StepRun]]] = {}
        self._known: dict[int, StepRun] = {}
        self._dirty: dict[int, StepRun] = {}
        self._new: list[StepRun] = []
        self._events: list[ExecutionEvent] = []
        self._ex_dirty: set[str] = set()
        # Scope instances whose outcome this advance has reported to their container. A local
        # activity run inline finishes inside its predecessor's on_finished, and both then find
        # the scope done: without this the container heard of it twice (an until loop started
        # two next iterations).
        self._scopes_reported: set[str] = set()
        # Parallel/loop fan-outs collected during one activation, sent as one group or chord.
        self._batch: list[StepRun] | None = None
        self.effects.queue = getattr(execution, "queue", "") or ""
        # The fan-out's pending activity steps, inserted together when it ends.
        self._deferred: list[StepRun] | None = None
        # Local activities run inline at most this many times per advance (bounds recursion).
        self._local_budget = 40
        # retry-failed: dynamic node id -> {item id: result} of items to keep.
        self.seeds: dict[str, dict] = {}
        # The node being activated or finished: an exception escaping the advance is blamed on it.
        self.current_node = ""

    # ------------------------------------------------------------------ storage
    #
    # Steps are read by scope instance, either whole (`steps_in`: the scope's completion, a
    # chord's join) or only for the nodes an advance needs (`load_nodes`: the finished node,
    # its successors and what they refer to), so a hop does not read more as a run grows.
    # One instance per row (`_known`): a step read twice is the same object, dirty or not.

    def adopt(self, step: StepRun) -> StepRun:
        """The instance of `step`'s row this advance works with (registering `step` if new)."""
        return self._known.setdefault(step.pk, step) if step.pk is not None else step

    def _adopt_all(self, steps) -> list[StepRun]:
        return [self._known.setdefault(step.pk, step) for step in steps]

    def steps_in(self, scope: str) -> list[StepRun]:
        if scope not in self._scope_cache:
            self._scope_cache[scope] = self._adopt_all(store.steps_of_scopes(StepRun, self.ex.pk, [scope]))
            self._partial.pop(scope, None)
        return self._scope_cache[scope]

    def prime(self, scopes) -> None:
        """Read the steps of several scope instances in one query (instead of one query each)."""
        missing = [scope for scope in scopes if scope not in self._scope_cache]
        if len(missing) < 2:
            return
        loaded: dict[str, list[StepRun]] = {scope: [] for scope in missing}
        for step in self._adopt_all(store.steps_of_scopes(StepRun, self.ex.pk, missing)):
            loaded[step.scope].append(step)
        self._scope_cache.update(loaded)
        for scope in missing:
            self._partial.pop(scope, None)

    def load_nodes(self, scope: str, node_ids) -> None:
        """Read the steps of `node_ids` in `scope` (one query for those not read yet)."""
        self.load_node_sets({scope: node_ids})

    def load_node_sets(self, wanted: dict[str, Any]) -> None:
        """Read, in one query, the steps of the given nodes of several scope instances
        ({scope: node ids}) that were not read yet."""
        missing: list[tuple[str, list[str]]] = []
        for scope, node_ids in wanted.items():
            if scope in self._scope_cache:
                continue
            part = self._partial.setdefault(scope, {})
            nodes = [node_id for node_id in dict.fromkeys(node_ids) if node_id not in part]
            if nodes:
                missing.append((scope, nodes))
        if not missing:
            return
        for scope, nodes in missing:
            for node_id in nodes:
                self._partial[scope][node_id] = []
        for step in self._adopt_all(store.steps_of_nodes(StepRun, self.ex.pk, missing)):
            self._partial[step.scope][step.node_id].append(step)

    def steps_of(self, scope: str, node_id: str) -> list[StepRun]:
        """Every step of `node_id` in scope instance `scope`, oldest first."""
        if scope in self._scope_cache:
            return [step for step in self._scope_cache[scope] if step.node_id == node_id]
        part = self._partial.get(scope)
        if part is None or node_id not in part:
            self.load_nodes(scope, [node_id])
            part = self._partial[scope]
        return part[node_id]

    def latest(self, scope: str, node_id: str) -> StepRun | None:
        steps = self.steps_of(scope, node_id)
        return steps[-1] if steps else None

    def load_for_finish(self, step: StepRun) -> None:
        """Read, in one query, what taking `step` into account will look at: its node's steps,
        its successors and their predecessors, the error handler, and the steps the successors'
        params and conditions refer to. Anything else is read on demand."""
        node = self.plan.nodes.get(step.node_id)
        if node is None or step.scope in self._scope_cache:
            return
        wanted = {node.id, *node.successors}
        for target_id in node.successors:
            target = self.plan.nodes.get(target_id)
            if target is None:
                continue
            wanted.update(target.predecessors)
            refs = step_refs(self.plan, target)
            if refs is None:
                self.steps_in(step.scope)
                return
            wanted.update(refs)
        if node.on_error:
            handler = self.plan.node(node.on_error)
            wanted.add(handler.id)
            wanted.update(handler.handles)
        scope_nodes = self.plan.scope(self._scope_id(step.scope)).node_ids
        if len(scope_nodes) <= SMALL_SCOPE:
            wanted.update(scope_nodes)  # a small scope is read whole: its completion check needs no more
        self.adopt(step)
        sets = {step.scope: [n for n in wanted if n in self.plan.nodes]}
        if step.scope and not node.successors and not node.on_error:
            # The last node of a loop body, a branch or an item: its scope may be done, and
            # then the container is needed: read in the same query.
            parent, container_id, _ = parent_scope(step.scope)
            sets[parent] = [container_id]
        self.load_node_sets(sets)

    def insert_deferred(self) -> None:
        """Insert the steps deferred since `_deferred` was opened, in one statement, and close it."""
        deferred, self._deferred = self._deferred, None
        if deferred:
            store.insert(deferred)
            self._adopt_all(deferred)

    def touch(self, step: StepRun) -> None:
        if step.pk:
            self._dirty[step.pk] = step

    def record_finished(self, step: StepRun, expect: str) -> None:
        """`step` (read under the run's lock, its result set in memory) is written at flush,
        on condition that it is still `expect`; otherwise the flush raises Runtime.Lost."""
        self.adopt(step)
        self._guarded[step.pk] = expect
        self.touch(step)

    def new_step(
        self, scope: str, node: NodePlan, *, status: str, attempt: int = 1, defer: bool = False, **fields: Any
    ) -> StepRun:
        """A new step run, inserted now, or with `defer` at the end of the fan-out that makes it
        (one multi-row INSERT for all its branches)."""
        step = StepRun(
            execution=self.ex,
            node_id=node.id,
            node_type=node.type,
            activity=node.spec.get("activity", "") if node.type == "activity" else "",
            scope=scope,
            attempt=attempt,
            status=status,
            **fields,
        )
        if scope not in self._scope_cache:
            self.steps_of(scope, node.id)  # earlier attempts of the node are known before this one joins them
        if defer and self._deferred is not None:
            self._deferred.append(step)
        else:
            store.insert([step])
            self.adopt(step)
        if scope in self._scope_cache:
            self._scope_cache[scope].append(step)
        else:
            self._partial[scope][node.id].append(step)
        self._new.append(step)
        return step

    def event(
        self,
        type_: str,
        *,
        node: str = "",
        scope: str = "",
        step: StepRun | None = None,
        payload: dict | None = None,
        actor: str = "",
    ) -> None:
        self.ex.last_seq += 1
        self._ex_dirty.add("last_seq")
        self._events.append(
            ExecutionEvent(
                execution=self.ex,
                seq=self.ex.last_seq,
                type=type_,
                node_id=node,
                scope=scope,
                step=step,
                payload=redact(payload or {}),
                actor=actor,
            )
        )

    def set_ex(self, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(self.ex, key, value)
            self._ex_dirty.add(key)

    def flush(self) -> SideEffects:
        """Write everything collected; return the side effects to run after commit."""
        if self._dirty:
            fields = [
                "status",
                "output",
                "error",
                "state",
                "advanced",
                "started_at",
                "finished_at",
                "scheduled_for",
                "in_chord",
                "logs",
                "worker",
            ]
            dirty = list(self._dirty.values())
            if len(dirty) == 1:
                # A sequence hop: the finished step's result and its `advanced` flag, in one
                # UPDATE that holds only if the step is still what this advance read.
                step = dirty[0]
                guard = self._guarded.get(step.pk)
                if not store.update(step, fields, where={"status": guard} if guard else None) and guard:
                    raise Runtime.Lost(step.pk)
            else:
                # The finished step with its container (a loop's counters, a parallel's joins) or
                # a fan-out's steps: one statement, the finished step still guarded.
                written = store.update_many(dirty, fields, guards=self._guarded)
                lost = set(self._guarded) & {step.pk for step in dirty} - written
                if lost:
                    raise Runtime.Lost(min(lost))
            self._guarded.clear()
            self._dirty.clear()
        if self._events:
            run_update = None
            if self._ex_dirty and "status" not in self._ex_dirty:
                # The run's new sequence number (and what else changed) with the events, in one statement.
                run_update = store.update_sql(self.ex, sorted(self._ex_dirty))
                self._ex_dirty.clear()
            store.insert(self._events, also=run_update)
            self.effects.events += self._events
            self._events = []
        if self._ex_dirty:
            if "status" in self._ex_dirty:
                # A change of status goes through the ORM: other apps follow it (post_save: the
                # activity feed records runs that fail). Rare: once or twice a run.
                self.ex.save(update_fields=sorted(self._ex_dirty))
            else:
                store.update(self.ex, sorted(self._ex_dirty))
            self._ex_dirty.clear()
        return self.effects

    # ------------------------------------------------------------------ context

    def context(self, scope: str, extra: dict | None = None) -> dict:
        """The data a reference in `scope` may read: $.input, $.vars, $.steps, $.item, $.index …"""
        chain = [""]
        rest = scope
        prefix = ""
        while rest:
            m = re.match(r"[A-Za-z][A-Za-z0-9_\-]*\[\d+\]/", rest)
            if not m:
                break
            prefix += m.group()
            chain.append(prefix)
            rest = rest[m.end() :]
        steps = _StepsView(self, chain)
        item: Any = None
        index: Any = None
        iteration: Any = None
        for instance in chain:
            if instance:
                parent, node_id, idx = parent_scope(instance)
                owner = self.plan.nodes.get(node_id)
                if owner is not None and owner.type in ("loop", "dynamic"):
                    container = self.latest(parent, node_id)
                    iteration = idx
                    index = idx
                    if container is not None and (owner.type == "dynamic" or owner.spec.get("mode") == "for_each"):
                        items = container.state.get("items", [])
                        item = items[idx] if idx < len(items) else None
        ctx = {
            "input": self.ex.input,
            "vars": self.ex.variables,
            "steps": steps,
            "execution": {
                "id": self.ex.pk,
                "workflow_id": self.ex.workflow_id,
                "started_at": self.ex.started_at.isoformat() if self.ex.started_at else None,
            },
            "item": item,
            "index": index,
            "iteration": iteration,
        }
        if extra:
            ctx.update(extra)
        return ctx

    # ------------------------------------------------------------------ activation

    def start(self) -> None:
        if self.ex.status != ExecutionStatus.RUNNING:  # created running (start_execution): not saved twice
            self.set_ex(status=ExecutionStatus.RUNNING)
        self.set_ex(started_at=self.now)
        self.event(
            "execution_started",
            payload={
                "input": self.ex.input,
                "trigger": self.ex.trigger,
                "variables": self.ex.variables,
                "correlation_id": self.ex.correlation_id,
            },
        )
        self.start_scope("", self.plan.root.id, fresh=True)

    def start_scope(self, instance: str, scope_id: str, extra: dict | None = None, *, fresh: bool = False) -> None:
        """Activate the entry node of scope instance `instance`. `fresh`: the instance is new (a new
        run's top level, a loop's next index), so it has no steps to read."""
        if fresh:
            self._scope_cache.setdefault(instance, [])
        entry = self.plan.node(self.plan.scope(scope_id).entry)
        self.activate(instance, entry, extra)

    def activate(self, scope: str, node: NodePlan, extra: dict | None = None) -> None:
        self.current_node = node.id
        kind = NODE_TYPES.get(node.type)
        if kind is None:
            step = self.new_step(
                scope,
                node,
                status=StepStatus.FAILED,
                finished_at=self.now,
                error=error_dict("UnsupportedNode", f"node type {node.type} cannot run here", node.id),
            )
            self.on_finished(step)
            return
        kind.activate(self, scope, node, extra)

    def _resolve(self, scope: str, node: NodePlan, value: Any, extra: dict | None) -> Any:
        return expressions.resolve(value, self.context(scope, extra))

    def _fail_now(self, scope: str, node: NodePlan, type_: str, message: str) -> None:
        step = self.new_step(
            scope, node, status=StepStatus.FAILED, finished_at=self.now, error=error_dict(type_, message, node.id)
        )
        self.event("step_failed", node=node.id, scope=scope, step=step, payload={"error": step.error, "attempt": 1})
        self.on_finished(step)

    def _fan_out(self, container: StepRun, node: NodePlan, children: list[tuple[str, str]], extra: dict | None) -> None:
        """Start child scopes; single-step activity children go out together, as a chord when the join waits for all."""
        outer = self._batch
        self._batch = []
        outer_deferred = self._deferred
        if outer_deferred is None:
            self._deferred = []
        for instance, scope_id in children:
            # The container was just created: its child scope instances have no steps yet.
            self.start_scope(instance, scope_id, extra, fresh=True)
        batch, self._batch = self._batch, outer
        singles = all(len(self.plan.scope(s).node_ids) == 1 for _, s in children)
        join_all = (node.type == "parallel" and node.spec.get("join", "all") == "all") or (
            node.type == "loop" and node.spec.get("complete_when", "all") == "all"
        )
        chord = singles and join_all and len(batch) > 1 and outer is None
        if chord:
            for step in batch:
                step.in_chord = True
                self.touch(step)  # a no-op for steps still to insert: the INSERT carries it
        if outer_deferred is None:
            self.insert_deferred()
        if not batch:
            return
        if chord:
            self.effects.chords.append(batch)
        elif outer is not None:
            outer.extend(batch)
        else:
            self.effects.dispatch.extend(batch)

    # ------------------------------------------------------------------ completion

    def on_finished(self, step: StepRun) -> None:
        """A step reached a final state: take it into account (the heart of advancing)."""
        if step.in_chord and not step.advanced and step.status in (StepStatus.COMPLETED, StepStatus.FAILED):
            # Chord members record their result without the run's lock; their history is written here.
            self.event(
                "step_started",
                node=step.node_id,
                scope=step.scope,
                step=step,
                payload={
                    "attempt": step.attempt,
                    "worker": step.worker,
                    "at": step.started_at.isoformat() if step.started_at else None,
                },
            )
            if step.status == StepStatus.COMPLETED:
                self.event(
                    "step_completed",
                    node=step.node_id,
                    scope=step.scope,
                    step=step,
                    payload={"attempt": step.attempt, "output": step.output, "duration_ms": step.duration_ms},
                )
            else:
                self.event(
                    "step_failed",
                    node=step.node_id,
                    scope=step.scope,
                    step=step,
                    payload={"attempt": step.attempt, "error": step.error},
                )
        step.advanced = True
        self.touch(step)
        self.current_node = step.node_id
        node = self.plan.node(step.node_id)
        scope = step.scope
        if step.status == StepStatus.COMPLETED:
            changes: dict[str, Any] = {}
            if node.spec.get("output_map"):
                try:
                    changes.update(hooks.call("map_output", node.spec["output_map"], step.output))
                except Exception as exc:  # MappingError, or any run-time error of the mapping
                    step.status, step.output = StepStatus.FAILED, None
                    step.error = error_dict("MappingError", f"output_map: {exc}", node.id, retryable=False)
                    self.event("step_failed", node=node.id, scope=scope, step=step, payload={"error": step.error})
                    self.on_finished(step)
                    return
            if node.type == "activity" and node.spec.get("activity") == "set" and isinstance(step.output, dict):
                changes.update(step.output)
            out_var = node.spec.get("output")
            if out_var:
                changes[out_var] = step.output
            if changes:
                self.ex.variables.update(changes)
                self._ex_dirty.add("variables")
                self.event("variables_updated", node=node.id, scope=scope, step=step, payload={"set": changes})
            self._resolve_handler(scope, node)
            self._propagate(scope, node)
        elif step.status == StepStatus.SKIPPED:
            self._resolve_handler(scope, node)
            self._propagate(scope, node)
        elif step.status == StepStatus.FAILED:
            if self._maybe_retry(step, node):
                return
            if node.on_error:
                handler = self.plan.node(node.on_error)
                self.event(
                    "error_handled",
                    node=node.id,
                    scope=scope,
                    step=step,
                    payload={"handler": handler.id, "error": step.error},
                )
                self.activate(scope, handler, {"error": step.error})
                self._propagate(scope, node)
                return
            self._fail_scope(scope, step)
            return
        else:  # cancelled: whoever cancelled it decides what follows
            return
        self._check_scope_done(scope)

    def _maybe_retry(self, step: StepRun, node: NodePlan) -> bool:
        retry = getattr(NODE_TYPES.get(node.type), "retry", None)
        return bool(retry and retry(self, step, node))

    def _resolve_handler(self, scope: str, node: NodePlan) -> None:
        """A node that did not fail releases its error handler, once all it guards are done."""
        if not node.on_error:
            return
        handler = self.plan.node(node.on_error)
        if self.latest(scope, handler.id) is not None:
            return
        for guarded in handler.handles:
            latest = self.latest(scope, guarded)
            if latest is None or latest.status not in (StepStatus.COMPLETED, StepStatus.SKIPPED):
                return
        if handler.predecessors:
            return  # it is also reached by ordinary edges; those decide
        self._skip(scope, handler)

    def _takes(self, scope: str, pred: str, target: str) -> bool | None:
        """True: edge pred->target is live; False: dead; None: pred is not finished yet."""
        step = self.latest(scope, pred)
        if step is None:
            return None
        if step.status == StepStatus.COMPLETED:
            if step.node_type == "condition":
                return (step.output or {}).get("chosen") == target
            if step.node_type in ("signal_wait", "approval"):
                chosen = step.state.get("chosen")
                if chosen is not None:
                    return chosen == target
                # No special route taken: ordinary edges are live, the timeout path is not.
                return target != self.plan.node(step.node_id).spec.get("timeout_to") or target in self._edge_targets(
                    step.node_id
                )
            return True
        if step.status in (StepStatus.SKIPPED, StepStatus.CANCELLED):
            return False
        if step.status == StepStatus.FAILED:
            return False if step.advanced else None
        return None

    def _propagate(self, scope: str, node: NodePlan) -> None:
        for target_id in node.successors:
            if self.latest(scope, target_id) is not None:
                continue
            target = self.plan.node(target_id)
            verdicts = [self._takes(scope, p, target_id) for p in target.predecessors]
            if any(v is None for v in verdicts):
                continue
            if any(verdicts):
                self.activate(scope, target)
            else:
                self._skip(scope, target)

    def _skip(self, scope: str, node: NodePlan) -> None:
        step = self.new_step(scope, node, status=StepStatus.SKIPPED, finished_at=self.now)
        self.event("step_skipped", node=node.id, scope=scope, step=step)
        self.on_finished(step)

    def _scope_nodes_resolved(self, scope: str) -> bool:
        if any(step.scope == scope and step.status in ACTIVE_STEP for step in self._new):
            return False  # this advance started something in the scope: it goes on
        scope_id = self._scope_id(scope)
        part = self._partial.get(scope)
        if part is None or not all(node_id in part for node_id in self.plan.scope(scope_id).node_ids):
            self.steps_in(scope)  # one read of the scope, not one per node
        for node_id in self.plan.scope(scope_id).node_ids:
            step = self.latest(scope, node_id)
            if step is None or step.status not in (StepStatus.COMPLETED, StepStatus.SKIPPED, StepStatus.FAILED):
                return False
            if step.status == StepStatus.FAILED and not step.advanced:
                return False
        return True

    def _scope_id(self, scope: str) -> str:
        if scope == "":
            return ""
        _, node_id, idx = parent_scope(scope)
        owner = self.plan.node(node_id)
        return f"{node_id}.{idx}" if owner.type == "parallel" else node_id

    def _edge_targets(self, node_id: str) -> set[str]:
        """Targets reached by explicit edges (not by timeout_to or routes)."""
        edges = self.plan.raw_edges.get(node_id)
        return edges if edges is not None else set()

    def _check_scope_done(self, scope: str) -> None:
        if scope in self._scopes_reported or not self._scope_nodes_resolved(scope):
            return
        self._scopes_reported.add(scope)
        if scope == "":
            if self.ex.status in (ExecutionStatus.RUNNING, ExecutionStatus.WAITING, ExecutionStatus.PAUSED):
                self._complete_execution()
            return
        parent, node_id, idx = parent_scope(scope)
        container = self.latest(parent, node_id)
        if container is None or container.status != StepStatus.WAITING:
            return
        result = self._scope_result(scope)
        self._child_done(container, self.plan.node(node_id), idx, ok=True, result=result)

    def _scope_result(self, scope: str) -> Any:
        scope_plan = self.plan.scope(self._scope_id(scope))
        if scope_plan.result:
            try:
                return expressions.resolve(scope_plan.result, self.context(scope))
            except Exception:  # a result that cannot be resolved is None, as a missing reference
                return None
        last = None
        for step in self._scope_steps(scope):
            if step.status == StepStatus.COMPLETED and (last is None or step.pk > last.pk):
                last = step
        return last.output if last else None

    def _scope_steps(self, scope: str) -> list[StepRun]:
        """Every step of a scope instance, from what was read already when that covers its nodes."""
        part = self._partial.get(scope)
        node_ids = self.plan.scope(self._scope_id(scope)).node_ids
        if part is not None and all(node_id in part for node_id in node_ids):
            return [step for node_id in node_ids for step in part[node_id]]
        return self.steps_in(scope)

    def _fail_scope(self, scope: str, failed: StepRun) -> None:
        if scope in self._scopes_reported:
            return
        self._scopes_reported.add(scope)
        self._cancel_scope(scope, reason=f"{failed.node_id} failed")
        if scope == "":
            error = dict(failed.error or {})
            error.setdefault("node", failed.node_id)
            self._finish_execution(ExecutionStatus.FAILED, error=error)
            return
        parent, node_id, idx = parent_scope(scope)
        container = self.latest(parent, node_id)
        if container is None or container.status != StepStatus.WAITING:
            return
        error = dict(failed.error or {})
        error.setdefault("node", failed.node_id)
        self._child_done(container, self.plan.node(node_id), idx, ok=False, error=error)

    def _cancel_scope(self, prefix: str, *, reason: str) -> None:
        """Cancel every active step at or below scope `prefix` (a prefix of "" means everything)."""
        qs = StepRun.objects.filter(
            execution=self.ex,
            status__in=[StepStatus.SCHEDULED, StepStatus.PENDING, StepStatus.RUNNING, StepStatus.WAITING],
        )
        if prefix:
            qs = qs.filter(scope__startswith=prefix)
        # Steps this advance already changed are known by their in-memory state (the database
        # still says "running" until the flush): a step cancelled by an inner scope is not
        # cancelled again by the outer one (it was: up to three step_cancelled events).
        known = dict(self._known)
        known.update(self._dirty)
        ids = []
        for step in self._deferred or []:  # made by this advance, not inserted yet
            if step.scope.startswith(prefix) and step.status in (
                StepStatus.SCHEDULED,
                StepStatus.PENDING,
                StepStatus.RUNNING,
                StepStatus.WAITING,
            ):
                step.status, step.finished_at, step.advanced = StepStatus.CANCELLED, self.now, True
                self.event("step_cancelled", node=step.node_id, scope=step.scope, step=step, payload={"reason": reason})
        for step_id in qs.values_list("id", flat=True):
            step = known.get(step_id) or StepRun.objects.get(pk=step_id)
            if step.status not in (StepStatus.SCHEDULED, StepStatus.PENDING, StepStatus.RUNNING, StepStatus.WAITING):
                continue
            ids.append(step_id)
            step.status = StepStatus.CANCELLED
            step.finished_at = self.now
            step.advanced = True
            self.touch(step)
            if step.task_id:
                self.effects.revoke.append(step.task_id)
            self.event("step_cancelled", node=step.node_id, scope=step.scope, step=step, payload={"reason": reason})
        Timer.objects.filter(execution=self.ex, fired_at__isnull=True, step_id__in=ids).update(fired_at=self.now)
        if ids:
            cancel_children_of_steps(self, ids, reason)
            approvals = [i for i in ids if (known.get(i) and known[i].node_type == "approval")] or list(
                StepRun.objects.filter(pk__in=ids, node_type="approval").values_list("pk", flat=True)
            )
            if approvals and hooks.registered("withdraw_approvals"):
                hooks.call("withdraw_approvals", approvals)

    # ------------------------------------------------------------------ containers

    def _child_done(
        self, container: StepRun, node: NodePlan, idx: int, *, ok: bool, result: Any = None, error: dict | None = None
    ) -> None:
        """Child scope `idx` of a container (a parallel's branch, a loop's iteration, a dynamic
        node's item) finished: the container's node type decides what follows."""
        NODE_TYPES[node.type].child_done(self, container, node, idx, ok=ok, result=result, error=error)

    def _finish_container(
        self, container: StepRun, node: NodePlan, *, ok: bool, output: Any = None, error: dict | None = None
    ) -> None:
        container.status = StepStatus.COMPLETED if ok else StepStatus.FAILED
        container.finished_at = self.now
        container.output = output if ok else None
        container.error = None if ok else (error or error_dict("BranchFailed", f"{node.id} failed", node.id))
        self.touch(container)
        self.event(
            "step_completed" if ok else "step_failed",
            node=node.id,
            scope=container.scope,
            step=container,
            payload={"output": output} if ok else {"error": container.error},
        )
        self.on_finished(container)

    # ------------------------------------------------------------------ run end

    def _complete_execution(self) -> None:
        output_spec = self.plan.output
        try:
            if output_spec is None:
                output = self.ex.variables
            else:
                output = expressions.resolve(output_spec, self.context(""))
        except (KeyError, expressions.ReferenceError_) as exc:
            self._finish_execution(ExecutionStatus.FAILED, error=error_dict("OutputError", f"output: {exc}"))
            return
        except Exception as exc:  # a run-time error of a template in the output
            self._finish_execution(
                ExecutionStatus.FAILED, error=error_dict("OutputError", f"output: {type(exc).__name__}: {exc}")
            )
            return
        self._finish_execution(ExecutionStatus.COMPLETED, output=output)

    def _finish_execution(self, status: str, *, output: Any = None, error: dict | None = None, actor: str = "") -> None:
        if status != ExecutionStatus.COMPLETED:
            self._cancel_scope("", reason=f"execution {status}")
        self.set_ex(status=status, finished_at=self.now, output=output, error=error)
        payload: dict[str, Any] = {"status": status}
        if output is not None:
            payload["output"] = output
        if error is not None:
            payload["error"] = error
        self.event(f"execution_{status}", payload=payload, actor=actor)
        notify_parent(self)

    def cancel(self, *, actor: str = "", reason: str = "cancelled") -> None:
        self._finish_execution(ExecutionStatus.CANCELLED, error=error_dict("Cancelled", reason), actor=actor)
