"""The dynamic node against ideal list scheduling (issue 4).

50 packages with known build times, run by the real engine (a `dynamic` node over
`delay` activities on a real Celery worker) at max_concurrent 1, 4 and 8. For each:

* makespan: dynamic node start -> node finished, against the ideal list-scheduling
  makespan for the same graph and durations (depgraph.list_schedule, same priority rule:
  longest remaining critical path first), computed here;
* refill latency: a completion (the step's finished_at) -> the next item's start
  (its step's started_at on a worker), p50 and p95.

Targets: makespan within 5% of ideal; refill p95 under 50 ms.

    .venv/bin/python benchmarks/dynamic.py [--scale 0.2] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import bench_stack, bench_user, median, percentile, wait_finished  # noqa: E402


def make_packages(n: int, seed: int, scale: float) -> list[dict]:
    rng = random.Random(seed)
    packages = []
    for i in range(n):
        deps = sorted(rng.sample(range(i), k=min(i, rng.randint(0, 3)))) if i else []
        packages.append({"id": f"pkg{i:02d}", "depends_on": [f"pkg{d:02d}" for d in deps], "duration": round(rng.uniform(1.0, 5.0) * scale, 3)})
    return packages


def run(concurrency: int, packages: list[dict]) -> dict:
    from apps.executions.engine.orchestrator import start_execution
    from apps.workflows.definition.depgraph import DependencyGraph
    from apps.workflows.services import create_workflow

    definition = {"format_version": 1, "nodes": [{
        "id": "build", "type": "dynamic", "items": "$.input.packages", "max_concurrent": concurrency,
        "activity": "delay", "params": {"seconds": "$.item.duration"},
    }]}
    workflow = create_workflow(owner=bench_user(), name=f"bench dynamic {uuid.uuid4().hex[:6]}", definition=definition)
    execution = wait_finished(start_execution(workflow, {"packages": packages}))
    assert execution.status == "completed", execution.error
    node = execution.steps.get(node_id="build", scope="")
    makespan = (node.finished_at - node.started_at).total_seconds()
    graph = DependencyGraph.from_items(packages)
    ideal = graph.list_schedule(slots=concurrency).makespan
    items = {s.scope: s for s in execution.steps.filter(node_id="build:item")}
    ids = [p["id"] for p in packages]
    step_of = {ids[int(scope.split("[")[1].split("]")[0])]: step for scope, step in items.items()}
    # A refill: an item_started in the same advance as an item_finished.
    refills = []
    events = list(execution.events.filter(node_id="build", type__in=["item_started", "item_finished"]).order_by("seq"))
    last_finished = None
    for event in events:
        if event.type == "item_finished":
            last_finished = event.payload["item"]
        elif last_finished is not None:
            done, started = step_of[last_finished], step_of[event.payload["item"]]
            refills.append((started.started_at - done.finished_at).total_seconds() * 1000)
    peak = node.output["peak_concurrency"]
    return {"concurrency": concurrency, "makespan": makespan, "ideal": ideal, "refills": refills, "peak": peak}


def time_state_endpoint() -> list[float]:
    """The orchestration-state endpoint on a finished 100-item run, through the real API view."""
    import time

    from rest_framework.test import APIClient

    from apps.executions.engine.orchestrator import start_execution
    from apps.workflows.services import create_workflow

    items = make_packages(100, 3, 0.0)
    workflow = create_workflow(owner=bench_user(), name=f"bench state {uuid.uuid4().hex[:6]}", definition={"format_version": 1, "nodes": [
        {"id": "build", "type": "dynamic", "items": "$.input.packages", "max_concurrent": 8, "activity": "noop"}]})
    execution = wait_finished(start_execution(workflow, {"packages": items}))
    client = APIClient()
    client.force_authenticate(bench_user())
    timings = []
    for _ in range(25):
        started = time.perf_counter()
        response = client.get(f"/api/v1/executions/{execution.pk}/state")
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and len(response.json()["dynamic"][0]["items"]) == 100
    return timings[5:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.5, help="seconds per unit of build time (durations are 1-5 units)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--packages", type=int, default=50)
    args = parser.parse_args()
    packages = make_packages(args.packages, args.seed, args.scale)
    with bench_stack("wb_bench_dynamic", worker_concurrency=12):
        run(4, make_packages(8, 1, 0.01))  # warm-up
        rows = [run(c, packages) for c in (1, 4, 8)]
        state_ms = time_state_endpoint()
    print(f"\n{args.packages} packages, build times {min(p['duration'] for p in packages):.2f}-{max(p['duration'] for p in packages):.2f} s, total {sum(p['duration'] for p in packages):.1f} s of work")
    print(f"{'slots':>5} {'makespan s':>11} {'ideal s':>8} {'over ideal':>10} {'peak':>5} {'refill p50 ms':>14} {'refill p95 ms':>14} {'refills':>7}")
    ok = True
    for r in rows:
        over = (r["makespan"] / r["ideal"] - 1) * 100
        p50, p95 = median(r["refills"]), percentile(r["refills"], 95)
        ok = ok and over <= 5 and p95 < 50
        print(f"{r['concurrency']:>5} {r['makespan']:>11.3f} {r['ideal']:>8.3f} {over:>9.2f}% {r['peak']:>5} {p50:>14.1f} {p95:>14.1f} {len(r['refills']):>7}")
    print(f"\ntargets (makespan within 5% of ideal, refill p95 < 50 ms): {'MET' if ok else 'MISSED'}")
    print(f"GET /api/v1/executions/{{id}}/state for 100 items: median {median(state_ms):.1f} ms, p95 {percentile(state_ms, 95):.1f} ms (target < 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
