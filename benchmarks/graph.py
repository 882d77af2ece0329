"""Dependency-graph and layout benchmark: `.venv/bin/python benchmarks/graph.py`.

Builds random layered DAGs (fixed seed, each item depending on 1-4 items of the layers above) of
100, 500 and 5,000 items and times, with time.perf_counter, median and p95 over repeated runs after
a warm-up: building the graph from item dicts, topological sort + layers, the ready set from a
partial completed set, the critical path, a full incremental run of the ready tracker, and list
scheduling on 8 slots. Then it lays out and renders a 50-node workflow. Every timed call starts
from a freshly built graph, so cached orders never flatter the figures.

Pure CPU: no database or server is needed. ``--quick`` runs fewer repetitions.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.workflows.definition.depgraph import DependencyGraph
from apps.workflows.definition.layout import compute_layout, render_svg

SEED = 20240601
SIZES = (100, 500, 5000)
BUDGET_MS = 10.0


def layered_items(n: int, seed: int = SEED) -> list[dict[str, Any]]:
    """n items in layers of about sqrt(n)*1.5; each depends on 1-4 items of the 1-3 layers above."""
    rng = random.Random(seed + n)
    width = max(3, int(n**0.5 * 1.5))
    layers: list[list[str]] = []
    items: list[dict[str, Any]] = []
    while len(items) < n:
        layer: list[str] = []
        for _ in range(min(width, n - len(items))):
            item_id = f"pkg-{len(items):05d}"
            deps: list[str] = []
            if layers:
                pool = [d for layer_above in layers[-3:] for d in layer_above]
                deps = rng.sample(pool, min(len(pool), rng.randint(1, 4)))
            items.append({"id": item_id, "depends_on": deps, "duration": round(rng.uniform(0.5, 30), 2)})
            layer.append(item_id)
        layers.append(layer)
    return items


def workflow_50(seed: int = SEED) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A 50-node workflow shaped like real ones: mostly chains, some branches, joins and one loop."""
    rng = random.Random(seed)
    types = ["activity"] * 6 + ["condition", "parallel", "approval", "timer"]
    nodes = [{"id": "start", "type": "trigger", "label": "Start"}]
    edges: list[dict[str, Any]] = []
    for i in range(1, 50):
        node_id = f"step_{i}"
        nodes.append({"id": node_id, "type": rng.choice(types), "label": f"Step {i}: do something"})
        parents = {nodes[max(0, i - rng.randint(1, 3))]["id"]}
        if rng.random() < 0.25:
            parents.add(nodes[rng.randrange(i)]["id"])
        for parent in sorted(parents):
            edges.append({"from": parent, "to": node_id})
    edges.append({"from": "step_30", "to": "step_25", "label": "next item"})  # a loop body's return
    return nodes, edges


def measure(setup: Callable[[], Any], run: Callable[[Any], Any], repeat: int, warmup: int = 3) -> list[float]:
    """Milliseconds for `run(setup())`, with setup untimed."""
    for _ in range(warmup):
        run(setup())
    samples = []
    for _ in range(repeat):
        arg = setup()
        t0 = time.perf_counter()
        run(arg)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def drain(graph: DependencyGraph) -> None:
    tracker = graph.tracker()
    frontier = tracker.initial_ready()
    while frontier:
        frontier.extend(tracker.mark_done(frontier.pop()))


def graph_cases(items: list[dict[str, Any]]) -> list[tuple[str, Callable[[], Any], Callable[[Any], Any]]]:
    """(name, untimed setup, timed run) for one item list; every run gets a freshly built graph."""
    order = DependencyGraph.from_items(items).topological_order()
    completed = set(order[: len(order) // 2])  # half done: a run in mid-flight

    def fresh() -> DependencyGraph:
        return DependencyGraph.from_items(items)

    def sort(g: DependencyGraph) -> None:
        g.topological_order()
        g.layers()

    return [
        ("build (from_items)", lambda: items, DependencyGraph.from_items),
        ("cycle check (find_cycle)", fresh, DependencyGraph.find_cycle),
        ("sort (topological_order + layers)", fresh, sort),
        ("ready set, half completed (incl. sort)", fresh, lambda g: g.ready(completed)),
        ("critical path", fresh, DependencyGraph.critical_path),
        ("tracker: every mark_done to the end", fresh, drain),
        ("list_schedule, 8 slots", fresh, lambda g: g.list_schedule(slots=8)),
    ]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0

    print(f"machine: {machine()}")
    print(f"seed {SEED}; times in ms; median / p95 over N runs after 3 warm-up runs\n")
    header = f"{'case':<52}{'N':>6}{'median':>10}{'p95':>10}"
    print(header)
    print("-" * len(header))
    results: dict[tuple[int, str], tuple[float, float]] = {}

    def row(size: int | None, name: str, samples: list[float]) -> None:
        med, high = statistics.median(samples), p95(samples)
        if size is not None:
            results[(size, name)] = (med, high)
        label = f"{size:>5} items  {name}" if size is not None else name
        print(f"{label:<52}{len(samples):>6}{med:>10.3f}{high:>10.3f}")

    for size in SIZES:
        items = layered_items(size)
        edges = sum(len(i["depends_on"]) for i in items)
        repeat = max(5, int({100: 300, 500: 100, 5000: 30}[size] * scale))

        reference = DependencyGraph.from_items(items)
        print(f"  {size} items, {edges} edges, {len(reference.layers())} layers")
        for name, setup, run in graph_cases(items):
            row(size, name, measure(setup, run, repeat))

    nodes, wf_edges = workflow_50()
    repeat = max(5, int(200 * scale))
    print(f"  workflow: {len(nodes)} nodes, {len(wf_edges)} edges")
    row(
        None,
        "50-node workflow: compute_layout",
        measure(lambda: None, lambda _: compute_layout(nodes, wf_edges), repeat),
    )
    layout = compute_layout(nodes, wf_edges)
    statuses = {n["id"]: "completed" for n in nodes[:20]}
    row(None, "50-node workflow: render_svg", measure(lambda: None, lambda _: render_svg(layout, statuses), repeat))

    print()
    checks = ["build (from_items)", "sort (topological_order + layers)", "ready set, half completed (incl. sort)"]
    worst = max(results[(100, name)][1] for name in checks)
    holds = worst < BUDGET_MS / 5
    verdict = "HOLDS" if holds else ("holds, but not by much" if worst < BUDGET_MS else "DOES NOT HOLD")
    print(f'"100 packages: build, sort, ready each well under {BUDGET_MS:g} ms": {verdict} (worst p95 {worst:.3f} ms)')
    return 0 if worst < BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
