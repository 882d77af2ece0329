"""Engine benchmark: `.venv/bin/python benchmarks/engine.py [--runs N]`.

In one run on this machine, against the embedded PostgreSQL and Redis of the checkout
(deploy/local/devstack.py), on a dedicated database `wb_bench` (created and migrated when
missing; the dev database is not touched) and a dedicated Celery queue served by a worker
subprocess this script starts and stops:

(a) a 10-step sequential workflow, end to end (start_execution -> the run is `completed`,
    observed by polling its row every 1 ms), in two variants: 10 `noop` steps (each one a
    Celery hop) and 10 `set` steps (local activities, run inline by the worker) -- against a
    raw Celery chain of 10 no-op tasks collected with `.get(interval=0.001)`;
(b) a parallel node with 100 single-`noop` branches joined with `all` (a chord of 100 plus
    the callback that advances the run) -- against a raw Celery group of 100 no-op tasks
    collected with `.join(interval=0.005)` (and, for reference, a raw chord of 100 + callback);
(c) validate() and compile time of generated 50-node and 500-node definitions (no database).

Each worker pool given with --pools (default: threads -c 8, then prefork -c 2) gets its own
worker and its own figures. Warm-up runs are not counted. Prints tables, the ratios and
whether the targets of issue 3 hold: (a) engine <= 2x the raw chain, (b) engine throughput
>= half of the raw group's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "local"))

BENCH_DB = "wb_bench"


# --------------------------------------------------------------------------- setup


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def setup_environment(queue: str) -> None:
    """Embedded servers up, DATABASE_URL on the bench database (created if missing), Django ready."""
    import devstack

    os.environ.update(devstack.ensure_env())
    import psycopg

    base = os.environ["DATABASE_URL"]
    with psycopg.connect(_with_db(base, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
            print(f"[bench] created database {BENCH_DB}", file=sys.stderr)
    os.environ["DATABASE_URL"] = _with_db(base, BENCH_DB)
    os.environ["WB_CELERY_QUEUE"] = queue
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflowsite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


class Worker:
    """A `celery worker` subprocess on the benchmark's own queue."""

    def __init__(self, queue: str, pool: str, concurrency: int):
        self.queue, self.pool, self.concurrency = queue, pool, concurrency
        self.name = f"{queue}-{pool}-{uuid.uuid4().hex[:4]}"
        self.log_path = ROOT / ".data" / "logs" / f"bench-worker-{pool}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        from workflowsite.celery import app

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "workflowsite", "worker",
                "-P", self.pool, "-c", str(self.concurrency), "-Q", self.queue,
                "-n", f"{self.name}@%h", "--include", "benchmarks.rawtasks",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
            ],
            cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the celery worker exited; see {self.log_path}")
            if app.control.inspect(destination=[f"{self.name}@{os.uname().nodename}"], timeout=0.5).ping():
                return
        self.stop()
        raise SystemExit(f"the celery worker did not answer within 60 s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --------------------------------------------------------------------------- definitions


def sequence_definition(activity: str, n: int = 10) -> dict:
    nodes = []
    for i in range(n):
        params = {"value": i} if activity == "noop" else {"values": {f"v{i}": i}}
        nodes.append({"id": f"s{i}", "type": "activity", "activity": activity, "params": params})
    edges = [{"from": f"s{i}", "to": f"s{i + 1}"} for i in range(n - 1)]
    return {"format_version": 1, "nodes": nodes, "edges": edges}


def parallel_definition(n: int = 100) -> dict:
    branches = [{"nodes": [{"id": f"b{i}", "type": "activity", "activity": "noop", "params": {"value": i}}]} for i in range(n)]
    return {"format_version": 1, "nodes": [{"id": "fan", "type": "parallel", "join": "all", "branches": branches}], "edges": [], "output": {"n": "$.steps.fan.output[-1]"}}


def generated_definition(n: int) -> dict:
    """About n nodes (nested ones included) shaped like real workflows: chains of activities with
    references and templates, a condition every 10 nodes, a 3-branch parallel and a for_each loop
    every 25, retry policies and error handlers sprinkled in."""
    nodes: list[dict] = []
    edges: list[dict] = []
    count = 0
    prev: str | None = None
    k = 0
    while count < n:
        k += 1
        if k % 25 == 0 and n - count >= 5:
            nid = f"par{k}"
            nodes.append({
                "id": nid, "type": "parallel", "join": "all", "output": f"p{k}",
                "branches": [{"nodes": [{"id": f"par{k}_b{j}", "type": "activity", "activity": "noop", "params": {"value": f"$.vars.v{k}"}}]} for j in range(3)],
            })
            count += 4
        elif k % 25 == 12 and n - count >= 3:
            nid = f"loop{k}"
            nodes.append({
                "id": nid, "type": "loop", "mode": "for_each", "items": "$.input.items", "concurrency": 4, "aggregate": "list",
                "body": {"nodes": [
                    {"id": f"loop{k}_a", "type": "activity", "activity": "transform", "params": {"source": "$.item", "mapping": {"id": "$.item.id", "n": {"path": "$.item.n", "default": 0}}}},
                    {"id": f"loop{k}_b", "type": "activity", "activity": "log", "params": {"message": "item {{ $.index }}: {{ $.steps.loop%d_a.output.id }}" % k}},
                ], "edges": [{"from": f"loop{k}_a", "to": f"loop{k}_b"}]},
            })
            count += 3
        elif k % 10 == 5 and prev is not None and n - count >= 4:
            cid, yes, no, after = f"cond{k}", f"yes{k}", f"no{k}", f"after{k}"
            nodes.append({"id": cid, "type": "condition", "cases": [
                {"when": {"all": [{"var": f"v{k - 1}", "op": "gt", "value": 10}, {"not": {"var": "$.input.flag", "op": "eq", "value": True}}]}, "to": yes},
                {"when": {"var": "$.input.name", "op": "matches", "value": "^a"}, "to": no},
            ], "default": no})
            nodes.append({"id": yes, "type": "activity", "activity": "set", "params": {"values": {f"v{k}": "$.input.n"}}})
            nodes.append({"id": no, "type": "activity", "activity": "set", "params": {"values": {f"v{k}": 0}}})
            nodes.append({"id": after, "type": "activity", "activity": "log", "params": {"message": "v is {{ $.vars.v%d | 0 }}" % k}})
            edges += [{"from": prev, "to": cid}, {"from": yes, "to": after}, {"from": no, "to": after}]
            prev = after
            count += 4
            continue
        else:
            nid = f"a{k}"
            node = {"id": nid, "type": "activity", "activity": "noop" if k % 3 else "set",
                    "params": {"value": "{{ $.input.name }}-%d" % k} if k % 3 else {"values": {f"v{k}": "$.input.n"}}}
            if k % 7 == 0:
                node["retry"] = {"max_attempts": 3, "backoff": "exponential", "interval": 1, "max_interval": 30}
                node["timeout"] = 30
            nodes.append(node)
            count += 1
        if prev is not None:
            edges.append({"from": prev, "to": nid})
        prev = nid
    return {
        "format_version": 1,
        "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}, "name": {"type": "string"}, "items": {"type": "array"}}},
        "variables": {"v0": 0},
        "nodes": nodes,
        "edges": edges,
    }


def count_nodes(nodes: list[dict]) -> int:
    total = 0
    for node in nodes:
        total += 1
        for branch in node.get("branches", []):
            total += count_nodes(branch["nodes"])
        if isinstance(node.get("body"), dict):
            total += count_nodes(node["body"]["nodes"])
    return total


# --------------------------------------------------------------------------- measuring


def stats(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, int(round(0.95 * len(ordered))) - 1))]
    return {"n": len(samples), "median": statistics.median(samples), "p95": p95, "min": ordered[0], "max": ordered[-1]}


def run_engine(workflow, *, timeout: float = 60.0) -> tuple[float, float]:
    """Start a run, poll its status every 1 ms; (end-to-end ms, engine ms from its own timestamps)."""
    from apps.executions.choices import FINISHED_EXECUTION
    from apps.executions.engine.orchestrator import start_execution
    from apps.executions.models import Execution

    t0 = time.perf_counter()
    execution = start_execution(workflow, {})
    deadline = t0 + timeout
    while True:
        status = Execution.objects.filter(pk=execution.pk).values_list("status", flat=True).first()
        if status in FINISHED_EXECUTION:
            break
        if time.perf_counter() > deadline:
            raise SystemExit(f"execution {execution.pk} still {status} after {timeout} s")
        time.sleep(0.001)
    elapsed = (time.perf_counter() - t0) * 1000
    execution.refresh_from_db()
    if execution.status != "completed":
        raise SystemExit(f"execution {execution.pk} ended {execution.status}: {execution.error}")
    inner = (execution.finished_at - execution.started_at).total_seconds() * 1000
    return elapsed, inner


def run_raw_chain(n: int = 10) -> float:
    from celery import chain

    from benchmarks.rawtasks import noop

    t0 = time.perf_counter()
    chain(*[noop.si() for _ in range(n)]).apply_async().get(interval=0.001, timeout=30)
    return (time.perf_counter() - t0) * 1000


def run_raw_group(n: int = 100) -> float:
    from celery import group

    from benchmarks.rawtasks import noop

    t0 = time.perf_counter()
    group(noop.si() for _ in range(n)).apply_async().join(interval=0.005, timeout=60)
    return (time.perf_counter() - t0) * 1000


def run_raw_chord(n: int = 100) -> float:
    from celery import chord

    from benchmarks.rawtasks import noop

    t0 = time.perf_counter()
    chord((noop.si() for _ in range(n)), noop.si()).apply_async().get(interval=0.001, timeout=60)
    return (time.perf_counter() - t0) * 1000


def measure(fn, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    return [fn() for _ in range(runs)]


def bench_worker(pool: str, concurrency: int, queue: str, runs: int, par_runs: int, workflows: dict) -> dict:
    worker = Worker(queue, pool, concurrency)
    worker.start()
    try:
        out: dict = {"pool": f"{pool} -c {concurrency}"}
        inner: dict[str, list[float]] = {"seq_noop": [], "seq_set": [], "parallel": []}

        def engine(key):
            def go():
                total, own = run_engine(workflows[key])
                inner[key].append(own)
                return total
            return go

        # Interleave the cases in rounds so drift (other load on the box) hits them alike.
        cases = {
            "raw_chain": (run_raw_chain, runs),
            "seq_noop": (engine("seq_noop"), runs),
            "seq_set": (engine("seq_set"), runs),
            "raw_group": (run_raw_group, par_runs),
            "raw_chord": (run_raw_chord, par_runs),
            "parallel": (engine("parallel"), par_runs),
        }
        for fn, _ in cases.values():  # warm-up
            for _ in range(3):
                fn()
        for values in inner.values():
            values.clear()
        samples: dict[str, list[float]] = {k: [] for k in cases}
        rounds = max(n for _, n in cases.values())
        for r in range(rounds):
            for key, (fn, n) in cases.items():
                if r < n:
                    samples[key].append(fn())
        for key, values in samples.items():
            out[key] = stats(values)
        for key, values in inner.items():
            out[key + "_inner"] = stats(values)
        return out
    finally:
        worker.stop()


def bench_compile(runs: int) -> dict:
    from apps.workflows.definition import validator

    out = {}
    for size in (50, 500):
        definition = generated_definition(size)
        problems = validator.validate(definition)
        if problems:
            raise SystemExit(f"the generated {size}-node definition is invalid: {problems[:3]}")
        reps = runs if size == 50 else max(20, runs // 5)
        timings: dict[str, list[float]] = {"validate": [], "build": [], "compile_cold": [], "compile_warm": []}
        validator.compile_definition(definition)
        for i in range(reps + 5):
            t0 = time.perf_counter()
            validator.validate(definition)
            t1 = time.perf_counter()
            validator._build(definition)
            t2 = time.perf_counter()
            # A new top-level key per run defeats compile_definition's content cache.
            fresh = {**definition, "x_bench_nonce": f"{size}-{i}-{uuid.uuid4().hex}"}
            t3 = time.perf_counter()
            validator.compile_definition(fresh)
            t4 = time.perf_counter()
            validator.compile_definition(definition)
            t5 = time.perf_counter()
            if i >= 5:
                timings["validate"].append((t1 - t0) * 1000)
                timings["build"].append((t2 - t1) * 1000)
                timings["compile_cold"].append((t4 - t3) * 1000)
                timings["compile_warm"].append((t5 - t4) * 1000)
        out[size] = {"nodes": count_nodes(definition["nodes"]), "bytes": len(json.dumps(definition)), **{k: stats(v) for k, v in timings.items()}}
    return out


# --------------------------------------------------------------------------- report


def fmt(s: dict) -> str:
    return f"{s['median']:.1f} / {s['p95']:.1f}"


def report(results: list[dict], compile_results: dict, runs: int, par_runs: int) -> bool:
    ok = True
    print()
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}, {platform.system()} {platform.release()}")
    print(f"runs: {runs} per sequential case, {par_runs} per parallel case, after 3 warm-up runs each (cases interleaved)")
    for res in results:
        print()
        print(f"== worker pool: {res['pool']} ==")
        print("| case | end-to-end ms median / p95 | engine's own ms (started_at..finished_at) median / p95 |")
        print("|---|---|---|")
        print(f"| raw Celery chain of 10 no-op tasks, .get() | {fmt(res['raw_chain'])} | |")
        print(f"| workflow: 10 sequential `noop` steps (10 hops) | {fmt(res['seq_noop'])} | {fmt(res['seq_noop_inner'])} |")
        print(f"| workflow: 10 sequential `set` steps (local, inline) | {fmt(res['seq_set'])} | {fmt(res['seq_set_inner'])} |")
        print(f"| raw Celery group of 100 no-op tasks, .join(interval=0.005) | {fmt(res['raw_group'])} | |")
        print(f"| raw Celery chord of 100 no-op tasks + callback | {fmt(res['raw_chord'])} | |")
        print(f"| workflow: parallel, 100 single-`noop` branches, join all | {fmt(res['parallel'])} | {fmt(res['parallel_inner'])} |")
        chain = res["raw_chain"]["median"]
        r_noop = res["seq_noop"]["median"] / chain
        r_set = res["seq_set"]["median"] / chain
        r_noop95 = res["seq_noop"]["p95"] / res["raw_chain"]["p95"]
        raw_tp = 100 / (res["raw_group"]["median"] / 1000)
        eng_tp = 100 / (res["parallel"]["median"] / 1000)
        chord_tp = 100 / (res["raw_chord"]["median"] / 1000)
        share = eng_tp / raw_tp
        print()
        print(f"(a) 10 noop steps / raw chain: {r_noop:.2f}x median, {r_noop95:.2f}x p95  -> target <= 2x: {'HOLDS' if r_noop <= 2 else f'MISSED by {(r_noop / 2 - 1) * 100:.0f}%'}")
        print(f"(a) 10 set steps (inline) / raw chain: {r_set:.2f}x median  -> target <= 2x: {'HOLDS' if r_set <= 2 else 'MISSED'}")
        print(f"(b) throughput: workflow {eng_tp:.0f} branches/s, raw group {raw_tp:.0f} tasks/s, raw chord {chord_tp:.0f} tasks/s; "
              f"workflow/group = {share:.2f}  -> target >= 0.5: {'HOLDS' if share >= 0.5 else f'MISSED (needs {0.5 / share:.2f}x more)'}")
        res["ratios"] = {"a_noop": r_noop, "a_noop_p95": r_noop95, "a_set": r_set, "b_share": share, "eng_tp": eng_tp, "raw_tp": raw_tp, "chord_tp": chord_tp}
        ok = ok and r_noop <= 2 and share >= 0.5
    print()
    print("== (c) validate and compile (ms, median / p95) ==")
    print("| definition | validate() | _build (validate + plan, uncached) | compile_definition, cache miss | compile_definition, cache hit |")
    print("|---|---|---|---|---|")
    for size, c in compile_results.items():
        print(f"| {size} nodes generated ({c['nodes']} counted, {c['bytes'] // 1024} KB JSON) | {fmt2(c['validate'])} | {fmt2(c['build'])} | {fmt2(c['compile_cold'])} | {fmt2(c['compile_warm'])} |")
    return ok


def fmt2(s: dict) -> str:
    return f"{s['median']:.2f} / {s['p95']:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="measured runs per sequential case (default 40)")
    parser.add_argument("--parallel-runs", type=int, default=None, help="measured runs per 100-wide case (default runs/2, at least 10)")
    parser.add_argument("--compile-runs", type=int, default=200, help="runs for the 50-node compile case (500-node: a fifth)")
    parser.add_argument("--pools", default="threads:8,prefork:2", help="worker pools to measure, pool:concurrency,... (default threads:8,prefork:2)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    par_runs = args.parallel_runs or max(10, args.runs // 2)

    queue = f"wbbench-{uuid.uuid4().hex[:6]}"
    setup_environment(queue)
    from django.contrib.auth import get_user_model

    from apps.workflows.services import create_workflow

    owner, _ = get_user_model().objects.get_or_create(username="bench", defaults={"email": "bench@example.com"})
    tag = uuid.uuid4().hex[:6]
    workflows = {
        "seq_noop": create_workflow(owner=owner, name=f"bench seq noop {tag}", definition=sequence_definition("noop")),
        "seq_set": create_workflow(owner=owner, name=f"bench seq set {tag}", definition=sequence_definition("set")),
        "parallel": create_workflow(owner=owner, name=f"bench parallel {tag}", definition=parallel_definition()),
    }
    print("[bench] (c) validate/compile ...", file=sys.stderr, flush=True)
    compile_results = bench_compile(args.compile_runs)
    results = []
    for item in args.pools.split(","):
        pool, _, conc = item.partition(":")
        print(f"[bench] worker -P {pool} -c {conc} ...", file=sys.stderr, flush=True)
        results.append(bench_worker(pool, int(conc or 8), queue, args.runs, par_runs, workflows))
    ok = report(results, compile_results, args.runs, par_runs)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"engine": results, "compile": compile_results}, indent=2, default=str))
    print()
    print("targets: " + ("all hold" if ok else "at least one missed (see above)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
