"""Soak: a long-running loop of 10,000 fast iterations, continuing as new every 1,000.

Prints, per 1,000 iterations: elapsed time, the worker's resident memory (RSS, via
/proc) and the run that holds them with its event count, so you can see that history
per run stays bounded and worker memory stays flat.

    .venv/bin/python benchmarks/soak_continue_as_new.py [--iterations 10000] [--every 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import bench_stack, bench_user  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1_000)
    args = parser.parse_args()
    # DEBUG off in the worker, as in production: with DEBUG on Django keeps the last 9,000 SQL
    # statements of each connection in memory, which would read as growth here.
    production = {"DEBUG": "false", "SECRET_KEY": "soak-" + "x" * 60, "SECURE_SSL_REDIRECT": "false"}
    with bench_stack("wb_bench_soak", worker_concurrency=4, extra_env=production) as stack:
        from apps.executions.engine.orchestrator import start_execution
        from apps.executions.models import Execution, StepRun
        from apps.workflows.services import create_workflow

        definition = {
            "format_version": 1, "variables": {"n": 0},
            "nodes": [{
                "id": "loop", "type": "loop", "mode": "while", "long_running": True, "continue_every": args.every,
                "max_iterations": args.iterations + 1, "condition": {"var": "$.vars.n", "op": "lt", "value": args.iterations},
                "body": {"nodes": [
                    {"id": "step", "type": "activity", "activity": "set", "params": {"values": {"n": "{{ $.iteration }}"}}},
                    {"id": "count", "type": "activity", "activity": "transform", "params": {"source": "$.vars", "mapping": {"n": "$.n"}}},
                ], "edges": [{"from": "step", "to": "count"}]},
            }],
        }
        workflow = create_workflow(owner=bench_user(), name=f"soak {uuid.uuid4().hex[:6]}", definition=definition)
        started = time.monotonic()
        first = start_execution(workflow, {})
        print(f"{'iterations':>10} {'elapsed s':>10} {'worker RSS MB':>14} {'run':>8} {'events in run':>14}")
        print(f"{0:>10} {0.0:>10.1f} {rss_mb(stack.worker.pid):>14.1f} {first.pk:>8} {'-':>14}")
        reported = 0
        while True:
            runs = list(Execution.objects.filter(workflow=workflow).order_by("id"))
            last = runs[-1]
            loop = StepRun.objects.filter(execution=last, node_id="loop").order_by("-id").first()
            done = loop.state.get("iterations", 0) if loop else 0
            while done - reported >= args.every or (last.is_finished and reported < done):
                reported = min(done, reported + args.every)
                holder = next((r for r in runs if r.status == "continued" and (r.output or {}).get("iterations", 0) >= reported), last)
                print(f"{reported:>10} {time.monotonic() - started:>10.1f} {rss_mb(stack.worker.pid):>14.1f} {holder.pk:>8} {holder.last_seq:>14}", flush=True)
            if last.is_finished:
                break
            time.sleep(0.5)
        print(f"\n{len(runs)} runs, final status {last.status}, n = {last.variables.get('n')}, "
              f"{args.iterations / (time.monotonic() - started):.0f} iterations/s; largest history per run: "
              f"{max(r.last_seq for r in runs)} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
