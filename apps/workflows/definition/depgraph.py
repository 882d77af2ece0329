"""Dependency graphs of items: cycles, layers, ready sets, critical path, list scheduling.

Plain Python with no Django import, so the validator (cycle checks on static item lists), the dynamic
node (which item may start now) and the benchmarks share one implementation that is testable alone.

An edge ``add_edge(dep, dependent)`` means *dependent needs dep*: it points the way work flows, so
cycles read in execution order ("a -> b -> c -> a": b waits for a, c for b, a for c).

Every walk is iterative (no recursion limit at any size) and linear in nodes plus edges, except
``list_schedule``, which keeps priority queues and so costs O((V + E) log V).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CycleError",
    "DependencyGraph",
    "DuplicateNodeError",
    "GraphError",
    "ReadyTracker",
    "Schedule",
    "Scheduler",
    "UnknownDependencyError",
]

NodeId = str


#
# Errors
#


class GraphError(ValueError):
    """Base class of everything this module raises about a malformed graph."""


class CycleError(GraphError):
    """The graph has a dependency cycle; ``cycle`` lists it closed, e.g. ``["a", "b", "a"]``."""

    def __init__(self, cycle: list[NodeId]) -> None:
        self.cycle = list(cycle)
        super().__init__("dependency cycle: " + " -> ".join(str(n) for n in self.cycle))


class UnknownDependencyError(GraphError):
    """``item`` depends on ``missing``, which is not in the graph."""

    def __init__(self, item: NodeId, missing: NodeId) -> None:
        self.item = item
        self.missing = missing
        super().__init__(f"item {item!r} depends on unknown item {missing!r}")


class DuplicateNodeError(GraphError):
    def __init__(self, node: NodeId) -> None:
        self.node = node
        super().__init__(f"duplicate item id {node!r}")


#
# The graph
#


class DependencyGraph:
    """A directed graph of items and their dependencies.

    Nodes keep their insertion order, which breaks every tie, so all results are deterministic.
    Derived orders (layers, topological order) are cached until the next mutation.
    """

    __slots__ = ("_data", "_dependents", "_deps", "_durations", "_ids", "_index", "_layer_of", "_topo")

    def __init__(self) -> None:
        self._ids: list[NodeId] = []
        self._index: dict[NodeId, int] = {}
        # Adjacency by insertion index; dicts used as ordered sets so duplicate edges collapse.
        self._deps: list[dict[int, None]] = []
        self._dependents: list[dict[int, None]] = []
        self._durations: list[float | None] = []
        self._data: list[Any] = []
        self._layer_of: list[int] | None = None
        self._topo: list[int] | None = None

    # -- building ---------------------------------------------------------------------------------

    def add_node(self, node_id: NodeId, duration: float | None = None, data: Any = None) -> None:
        """Add an item; ``duration`` is its expected run time in seconds (None: unknown).

        Raises DuplicateNodeError for an id already present, GraphError for a negative or
        non-numeric duration.
        """
        if node_id in self._index:
            raise DuplicateNodeError(node_id)
        if duration is not None:
            if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0:
                raise GraphError(f"item {node_id!r}: duration must be a number of seconds >= 0, got {duration!r}")
            duration = float(duration)
        self._index[node_id] = len(self._ids)
        self._ids.append(node_id)
        self._deps.append({})
        self._dependents.append({})
        self._durations.append(duration)
        self._data.append(data)
        self._invalidate()

    def add_edge(self, dep: NodeId, dependent: NodeId) -> None:
        """Record that ``dependent`` needs ``dep``. Both must exist; adding an edge twice is a no-op.

        Raises UnknownDependencyError (naming ``dependent`` and the missing id) otherwise.
        """
        index = self._index
        if dependent not in index:
            raise GraphError(f"unknown item {dependent!r}")
        if dep not in index:
            raise UnknownDependencyError(dependent, dep)
        d, t = index[dep], index[dependent]
        if d not in self._deps[t]:
            self._deps[t][d] = None
            self._dependents[d][t] = None
            self._invalidate()

    @classmethod
    def from_items(
        cls,
        items: Iterable[Mapping[str, Any]],
        id_key: str = "id",
        deps_key: str = "depends_on",
        duration_key: str = "duration",
    ) -> DependencyGraph:
        """Build a graph from item mappings such as ``{"id": "b", "depends_on": ["a"], "duration": 2}``.

        Each item is kept as the node's data. Dependencies may name items that come later in the list.
        Raises GraphError for an item without an id, DuplicateNodeError, UnknownDependencyError.
        Cycles are not checked here: call ``check()``.
        """
        graph = cls()
        pending: list[tuple[NodeId, Any]] = []
        for position, item in enumerate(items):
            if id_key not in item or item[id_key] is None:
                raise GraphError(f"item #{position} has no {id_key!r}")
            node_id = item[id_key]
            graph.add_node(node_id, item.get(duration_key), item)
            pending.append((node_id, item.get(deps_key)))
        for node_id, deps in pending:
            if deps is None:
                continue
            if isinstance(deps, (str, bytes)) or not isinstance(deps, Iterable):
                raise GraphError(f"item {node_id!r}: {deps_key!r} must be a list of item ids")
            for dep in deps:
                graph.add_edge(dep, node_id)
        return graph

    def _invalidate(self) -> None:
        self._layer_of = None
        self._topo = None

    # -- inspection -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._index

    @property
    def nodes(self) -> list[NodeId]:
        """Node ids in insertion order."""
        return list(self._ids)

    @property
    def edge_count(self) -> int:
        return sum(len(d) for d in self._deps)

    def dependencies(self, node_id: NodeId) -> list[NodeId]:
        """What ``node_id`` needs, in the order the edges were added."""
        ids = self._ids
        return [ids[d] for d in self._deps[self._index[node_id]]]

    def dependents(self, node_id: NodeId) -> list[NodeId]:
        """What needs ``node_id`` directly, in the order the edges were added."""
        ids = self._ids
        return [ids[d] for d in self._dependents[self._index[node_id]]]

    def duration(self, node_id: NodeId) -> float | None:
        return self._durations[self._index[node_id]]

    def data(self, node_id: NodeId) -> Any:
        return self._data[self._index[node_id]]

    # -- cycles -----------------------------------------------------------------------------------

    def find_cycle(self) -> list[NodeId] | None:
        """One cycle, closed and in execution order (``["a", "b", "c", "a"]``), or None.

        The cycle starts at its earliest-inserted node; a self-loop comes out as ``["a", "a"]``.
        """
        if self._topo is not None or self._kahn():
            return None
        n = len(self._ids)
        dependents = [list(d) for d in self._dependents]
        # 0 = unvisited, 1 = on the current path, 2 = finished.
        state = bytearray(n)
        for root in range(n):
            if state[root]:
                continue
            path: list[int] = [root]
            cursor: list[int] = [0]
            state[root] = 1
            while path:
                node = path[-1]
                nexts = dependents[node]
                i = cursor[-1]
                if i < len(nexts):
                    cursor[-1] = i + 1
                    nxt = nexts[i]
                    if state[nxt] == 0:
                        state[nxt] = 1
                        path.append(nxt)
                        cursor.append(0)
                    elif state[nxt] == 1:
                        loop = path[path.index(nxt) :]
                        start = loop.index(min(loop))
                        loop = loop[start:] + loop[:start]
                        return [self._ids[k] for k in loop] + [self._ids[loop[0]]]
                else:
                    state[node] = 2
                    path.pop()
                    cursor.pop()
        return None

    def check(self) -> None:
        """Raise CycleError naming a full cycle if the graph has one."""
        self._ensure_order()

    # -- orders -----------------------------------------------------------------------------------

    def _ensure_order(self) -> list[int]:
        """The cached topological order; raises CycleError naming a cycle if there is one."""
        if self._topo is None and not self._kahn():
            cycle = self.find_cycle()
            assert cycle is not None
            raise CycleError(cycle)
        assert self._topo is not None
        return self._topo

    def _kahn(self) -> bool:
        """Kahn's algorithm by layers: caches each node's layer and the topological order.

        Returns False, caching nothing, when a cycle leaves nodes unordered.
        """
        n = len(self._ids)
        indegree = [len(d) for d in self._deps]
        dependents = self._dependents
        layer_of = [0] * n
        current = [i for i in range(n) if indegree[i] == 0]
        topo: list[int] = []
        depth = 0
        while current:
            current.sort()  # insertion order within a layer
            topo.extend(current)
            following: list[int] = []
            for node in current:
                layer_of[node] = depth
                for nxt in dependents[node]:
                    indegree[nxt] -= 1
                    if indegree[nxt] == 0:
                        following.append(nxt)
            current = following
            depth += 1
        if len(topo) != n:
            return False
        self._layer_of = layer_of
        self._topo = topo
        return True

    def topological_order(self) -> list[NodeId]:
        """Every id, dependencies first: by layer, then insertion order. Raises CycleError."""
        ids = self._ids
        return [ids[i] for i in self._ensure_order()]

    def layers(self) -> list[list[NodeId]]:
        """Topological layers, each sorted: layer k holds the items whose longest chain of
        dependencies has k edges. Raises CycleError."""
        topo = self._ensure_order()
        layer_of = self._layer_of
        assert layer_of is not None
        result: list[list[NodeId]] = []
        ids = self._ids
        for node in topo:
            depth = layer_of[node]
            if depth == len(result):
                result.append([])
            result[depth].append(ids[node])
        for layer in result:
            layer.sort()
        return result

    def layer_of(self, node_id: NodeId) -> int:
        self._ensure_order()
        assert self._layer_of is not None
        return self._layer_of[self._index[node_id]]

    # -- readiness --------------------------------------------------------------------------------

    def ready(
        self,
        completed: set[NodeId] | frozenset[NodeId],
        running: Iterable[NodeId] = (),
        blocked: Iterable[NodeId] = (),
    ) -> list[NodeId]:
        """Ids whose dependencies are all in ``completed`` and which are not themselves completed,
        running or blocked, in topological order (ties by insertion order). Unknown ids in the
        arguments are ignored. Raises CycleError."""
        topo = self._ensure_order()
        skip = set(completed)
        skip.update(running)
        skip.update(blocked)
        ids = self._ids
        deps = self._deps
        out: list[NodeId] = []
        for node in topo:
            node_id = ids[node]
            if node_id in skip:
                continue
            for d in deps[node]:
                if ids[d] not in completed:
                    break
            else:
                out.append(node_id)
        return out

    def transitive_dependents(self, node_id: NodeId) -> set[NodeId]:
        """Everything that needs ``node_id`` directly or indirectly (not ``node_id`` itself,
        unless it sits on a cycle)."""
        ids = self._ids
        return {ids[i] for i in self._reach(self._index[node_id])}

    def _reach(self, start: int) -> list[int]:
        dependents = self._dependents
        seen = {start}
        out: list[int] = []
        stack = [start]
        while stack:
            node = stack.pop()
            for nxt in dependents[node]:
                if nxt not in seen:
                    seen.add(nxt)
                    out.append(nxt)
                    stack.append(nxt)
                elif nxt == start and start not in out:
                    out.append(start)
        return out

    def tracker(self, completed: Iterable[NodeId] = (), failed: Iterable[NodeId] = ()) -> ReadyTracker:
        """An incremental ready-set tracker over this graph (see ReadyTracker)."""
        return ReadyTracker(self, completed=completed, failed=failed)

    # -- timing -----------------------------------------------------------------------------------

    def _weights(self, durations: Mapping[NodeId, float] | None, default: float) -> list[float]:
        if durations is None:
            return [default if d is None else d for d in self._durations]
        ids = self._ids
        out: list[float] = []
        for i, own in enumerate(self._durations):
            value = durations.get(ids[i], own)
            out.append(default if value is None else float(value))
        return out

    def critical_path(
        self, default_duration: float = 0.0, durations: Mapping[NodeId, float] | None = None
    ) -> tuple[list[NodeId], float]:
        """The longest chain by expected duration and its total, e.g. ``(["a", "c", "e"], 6.0)``.

        Items without a duration count as ``default_duration``; ``durations`` overrides the nodes'
        own. Ties go to the chain met first in topological order. Raises CycleError.
        """
        topo = self._ensure_order()
        if not topo:
            return [], 0.0
        weight = self._weights(durations, default_duration)
        finish = [0.0] * len(topo)
        via = [-1] * len(topo)
        deps = self._deps
        rank = self._ranks()
        for node in topo:
            best, best_dep = 0.0, -1
            for d in deps[node]:
                if best_dep < 0 or finish[d] > best or (finish[d] == best and rank[d] < rank[best_dep]):
                    best, best_dep = finish[d], d
            finish[node] = best + weight[node]
            via[node] = best_dep
        end = topo[0]
        for node in topo:
            if finish[node] > finish[end]:
                end = node
        chain: list[int] = []
        node = end
        while node >= 0:
            chain.append(node)
            node = via[node]
        chain.reverse()
        return [self._ids[i] for i in chain], finish[end]

    def _ranks(self) -> list[int]:
        topo = self._ensure_order()
        rank = [0] * len(topo)
        for position, node in enumerate(topo):
            rank[node] = position
        return rank

    def remaining_path_lengths(
        self, default_duration: float = 0.0, durations: Mapping[NodeId, float] | None = None
    ) -> dict[NodeId, float]:
        """For each item, its own duration plus the longest chain of dependents after it
        (the "bottom level" list scheduling orders by). Raises CycleError."""
        ids = self._ids
        return {ids[i]: v for i, v in enumerate(self._bottom_levels(self._weights(durations, default_duration)))}

    def _bottom_levels(self, weight: list[float]) -> list[float]:
        topo = self._ensure_order()
        level = [0.0] * len(topo)
        dependents = self._dependents
        for node in reversed(topo):
            tail = 0.0
            for nxt in dependents[node]:
                tail = max(tail, level[nxt])
            level[node] = weight[node] + tail
        return level

    def list_schedule(
        self,
        durations: Mapping[NodeId, float] | None = None,
        slots: int = 1,
        *,
        default_duration: float = 0.0,
    ) -> Schedule:
        """Simulate ideal greedy list scheduling on ``slots`` parallel slots.

        Whenever a slot is free the next ready item starts, the one with the longest remaining
        critical path first (ties by insertion order); no dispatch overhead. ``durations`` overrides
        the nodes' own; missing ones count as ``default_duration``. This is the yardstick the
        dynamic node's benchmark compares its real makespan against. Raises CycleError.
        """
        if slots < 1:
            raise GraphError("slots must be at least 1")
        weight = self._weights(durations, default_duration)
        level = self._bottom_levels(weight)
        n = len(self._ids)
        waiting = [len(d) for d in self._deps]
        dependents = self._dependents
        ready: list[tuple[float, int]] = [(-level[i], i) for i in range(n) if waiting[i] == 0]
        heapq.heapify(ready)
        free_slots = list(range(slots))  # a heap, so the lowest free slot is taken first
        running: list[tuple[float, int, int]] = []  # (finish time, insertion index, slot)
        start = [0.0] * n
        finish = [0.0] * n
        slot_of = [0] * n
        now = 0.0
        done = 0
        while done < n:
            while ready and free_slots:
                _, node = heapq.heappop(ready)
                slot = heapq.heappop(free_slots)
                start[node] = now
                finish[node] = now + weight[node]
                slot_of[node] = slot
                heapq.heappush(running, (finish[node], node, slot))
            # Everything finishing at the next instant completes before anything new starts.
            now = running[0][0]
            while running and running[0][0] == now:
                _, node, slot = heapq.heappop(running)
                heapq.heappush(free_slots, slot)
                done += 1
                for nxt in dependents[node]:
                    waiting[nxt] -= 1
                    if waiting[nxt] == 0:
                        heapq.heappush(ready, (-level[nxt], nxt))
        ids = self._ids
        return Schedule(
            makespan=max(finish, default=0.0),
            slots=slots,
            start={ids[i]: start[i] for i in range(n)},
            finish={ids[i]: finish[i] for i in range(n)},
            slot={ids[i]: slot_of[i] for i in range(n)},
        )


@dataclass(frozen=True)
class Schedule:
    """Result of ``DependencyGraph.list_schedule``: times in seconds from the start."""

    makespan: float
    slots: int
    start: dict[NodeId, float] = field(default_factory=dict)
    finish: dict[NodeId, float] = field(default_factory=dict)
    slot: dict[NodeId, int] = field(default_factory=dict)

    def order(self) -> list[NodeId]:
        """Ids by start time, ties by slot."""
        return sorted(self.start, key=lambda k: (self.start[k], self.slot[k]))


#
# Incremental readiness
#


class ReadyTracker:
    """Keeps, per item, the count of dependencies not yet done, so each completion costs only
    the item's out-degree. Built from a checked (acyclic) graph; raises CycleError otherwise.

    ``completed`` and ``failed`` seed the state when resuming a run. The tracker does not know
    what is running: ``initial_ready()`` and ``mark_done()`` hand out each item exactly once, and
    the caller starts them.
    """

    __slots__ = ("_blocked", "_done", "_failed", "_graph", "_rank", "_waiting")

    def __init__(self, graph: DependencyGraph, completed: Iterable[NodeId] = (), failed: Iterable[NodeId] = ()) -> None:
        graph._ensure_order()
        self._graph = graph
        self._rank = graph._ranks()
        index = graph._index
        self._done: set[int] = {index[c] for c in completed}
        self._failed: set[int] = set()
        self._blocked: set[int] = set()
        self._waiting = [sum(1 for d in deps if d not in self._done) for deps in graph._deps]
        for item in failed:
            self.mark_failed(item)

    def _sorted(self, nodes: Iterable[int]) -> list[NodeId]:
        rank = self._rank
        ids = self._graph._ids
        return [ids[i] for i in sorted(nodes, key=rank.__getitem__)]

    def initial_ready(self) -> list[NodeId]:
        """Items with every dependency done that are not done, failed or blocked themselves,
        in topological order (ties by insertion order)."""
        waiting = self._waiting
        out = (
            i
            for i in range(len(waiting))
            if waiting[i] == 0 and i not in self._done and i not in self._failed and i not in self._blocked
        )
        return self._sorted(out)

    def mark_done(self, node_id: NodeId) -> list[NodeId]:
        """Record a completion; return the items that just became ready (topological order).

        Marking an item done twice returns [] the second time (deliveries are at least once).
        Raises GraphError for an item that was not ready: failed, blocked or with open dependencies.
        """
        node = self._graph._index[node_id]
        if node in self._done:
            return []
        if node in self._failed or node in self._blocked or self._waiting[node]:
            raise GraphError(f"item {node_id!r} is not ready, so it cannot be done")
        self._done.add(node)
        waiting = self._waiting
        newly: list[int] = []
        for nxt in self._graph._dependents[node]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0 and nxt not in self._blocked:
                newly.append(nxt)
        return self._sorted(newly)

    def mark_failed(self, node_id: NodeId) -> set[NodeId]:
        """Record a failure; return the transitive dependents blocked by it that were not
        blocked already. Idempotent."""
        node = self._graph._index[node_id]
        if node in self._done:
            raise GraphError(f"item {node_id!r} is already done, so it cannot fail")
        self._failed.add(node)
        self._blocked.discard(node)
        ids = self._graph._ids
        newly: set[NodeId] = set()
        for nxt in self._graph._reach(node):
            if nxt not in self._blocked and nxt not in self._failed and nxt not in self._done:
                self._blocked.add(nxt)
                newly.add(ids[nxt])
        return newly

    def transitive_dependents(self, node_id: NodeId) -> set[NodeId]:
        return self._graph.transitive_dependents(node_id)

    @property
    def done(self) -> frozenset[NodeId]:
        ids = self._graph._ids
        return frozenset(ids[i] for i in self._done)

    @property
    def failed(self) -> frozenset[NodeId]:
        ids = self._graph._ids
        return frozenset(ids[i] for i in self._failed)

    @property
    def blocked(self) -> frozenset[NodeId]:
        ids = self._graph._ids
        return frozenset(ids[i] for i in self._blocked)

    @property
    def outstanding(self) -> int:
        """How many items are neither done, failed nor blocked."""
        return len(self._waiting) - len(self._done) - len(self._failed) - len(self._blocked)

    @property
    def finished(self) -> bool:
        """True once every item is done, failed or blocked."""
        return self.outstanding == 0


# The engine speaks of scheduling; both names refer to the same incremental tracker.
Scheduler = ReadyTracker
