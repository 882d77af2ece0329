"""Engine benchmark: `.venv/bin/python benchmarks/engine.py [--runs N] [--pools threads:8,prefork:8]`.

In one run on this machine, against the embedded PostgreSQL and Redis of the checkout
(deploy/local/devstack.py), on a dedicated database `wb_bench` (created and migrated when
missing; the dev database is not touched). Two kinds of Celery worker, each a subprocess on
a queue of its own, started and stopped here:

* the baseline: raw Celery on a prefork worker `-c 2` (and, separately, raw Celery on each
  engine pool, so both floors are on record), running tasks that do nothing;
* the engine, on each pool given with --pools (default: threads -c 8, then prefork -c 8).

Cases (engine's own time = the run's started_at..finished_at):

(a) 10 sequential `noop` worker steps (not inline) against a raw chain of 10 no-op tasks;
    10 `set` steps (local activities, run inline) for reference;
(b) a parallel node of 100 single-`noop` branches, join all, against a raw chord of 100;
(d) throughput: 1,000 one-step runs started in this process, runs completed per second;
(e) a `for_each` over 500 `noop` items with concurrency 10: items per second;
(f) a `dynamic` node of 0.2 s items (`delay`) in a layered graph of 40 items at N=4: makespan
    against the ideal list schedule, and whether 4 were in flight whenever 4 were ready;
(g) a 1,000-step sequence: the median hop (finished_at to finished_at) of its first 50 and
    its last 50 steps;
(c) validate() and compile time of generated 50-node and 500-node definitions (no database).

Targets of issue 13: (a) <= 2x the raw prefork chain; (b) <= 1.5x the raw chord; (d) >= 150
runs/s; (e) >= 300 items/s; (f) <= 1.10x ideal, 4 in flight whenever 4 are ready; (g) the last
hops cost what the first cost.
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


RAW_QUEUE = {"name": ""}


def _raw(sig):
    return sig.set(queue=RAW_QUEUE["name"])


def run_raw_chain(n: int = 10) -> float:
    from celery import chain

    from benchmarks.rawtasks import noop

    t0 = time.perf_counter()
    chain(*[_raw(noop.si()) for _ in range(n)]).apply_async(queue=RAW_QUEUE["name"]).get(interval=0.001, timeout=30)
    return (time.perf_counter() - t0) * 1000


def run_raw_chord(n: int = 100) -> float:
    from celery import chord

    from benchmarks.rawtasks import noop

    t0 = time.perf_counter()
    chord([_raw(noop.si()) for _ in range(n)], _raw(noop.si())).apply_async(queue=RAW_QUEUE["name"]).get(interval=0.001, timeout=60)
    return (time.perf_counter() - t0) * 1000


def measure(fn, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    return [fn() for _ in range(runs)]


def bench_raw(pool: str, concurrency: int, runs: int, par_runs: int) -> dict:
    """The floor: raw Celery on a worker of its own."""
    queue = f"wbbench-raw-{uuid.uuid4().hex[:6]}"
    worker = Worker(queue, pool, concurrency)
    worker.start()
    RAW_QUEUE["name"] = queue
    try:
        return {
            "pool": f"{pool} -c {concurrency}",
            "raw_chain": stats(measure(run_raw_chain, runs, 5)),
            "raw_chord": stats(measure(run_raw_chord, par_runs, 3)),
        }
    finally:
        worker.stop()


def wait_all(ids: list[int], timeout: float = 600.0) -> None:
    from apps.executions.choices import FINISHED_EXECUTION
    from apps.executions.models import Execution

    deadline = time.monotonic() + timeout
    while Execution.objects.filter(pk__in=ids).exclude(status__in=list(FINISHED_EXECUTION)).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"runs still going after {timeout} s")
        time.sleep(0.01)
    bad = list(Execution.objects.filter(pk__in=ids).exclude(status="completed").values_list("pk", "status", "error")[:3])
    if bad:
        raise SystemExit(f"runs did not complete: {bad}")


def bench_one_step_runs(workflow, n: int) -> dict:
    """n one-step runs started in this process as fast as it can; completed per second."""
    from django.db.models import Max, Min

    from apps.executions.engine.orchestrator import start_execution
    from apps.executions.models import Execution

    t0 = time.perf_counter()
    ids = [start_execution(workflow, {}).pk for _ in range(n)]
    started = time.perf_counter() - t0
    wait_all(ids)
    wall = time.perf_counter() - t0
    span = Execution.objects.filter(pk__in=ids).aggregate(first=Min("created_at"), last=Max("finished_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    return {"runs": n, "start_s": started, "wall_s": wall, "runs_per_s": n / seconds, "start_per_s": n / started}


def bench_for_each(workflow, n: int) -> dict:
    from apps.executions.engine.orchestrator import start_execution
    from apps.executions.models import StepRun

    execution = start_execution(workflow, {"items": list(range(n))})
    wait_all([execution.pk])
    loop = StepRun.objects.get(execution=execution, node_id="each", scope="")
    seconds = (loop.finished_at - loop.started_at).total_seconds()
    return {"items": n, "seconds": seconds, "items_per_s": n / seconds}


def layered_items(layers: int = 5, width: int = 8, seconds: float = 0.2, seed: int = 3) -> list[dict]:
    import random

    rng = random.Random(seed)
    items: list[dict] = []
    previous: list[str] = []
    for layer in range(layers):
        current = []
        for k in range(width):
            item_id = f"L{layer}i{k}"
            deps = sorted(rng.sample(previous, k=min(len(previous), rng.randint(1, 3)))) if previous else []
            items.append({"id": item_id, "depends_on": deps, "duration": seconds})
            current.append(item_id)
        previous = current
    return items


def bench_dynamic(workflow, items: list[dict], slots: int) -> dict:
    """Makespan against the ideal list schedule, and slots kept full whenever items were ready."""
    from apps.executions.engine.orchestrator import start_execution
    from apps.executions.models import StepRun
    from apps.workflows.definition.depgraph import DependencyGraph

    execution = start_execution(workflow, {"items": items})
    wait_all([execution.pk])
    node = StepRun.objects.get(execution=execution, node_id="build", scope="")
    makespan = (node.finished_at - node.started_at).total_seconds()
    ideal = DependencyGraph.from_items(items).list_schedule(slots=slots).makespan
    deps = {item["id"]: set(item["depends_on"]) for item in items}
    done: set[str] = set()
    running: set[str] = set()
    short = 0
    events = list(execution.events.filter(node_id="build", type__in=["item_started", "item_finished"]).order_by("seq"))
    for k, event in enumerate(events):
        item = event.payload["item"]
        if event.type == "item_started":
            running.add(item)
        else:
            running.discard(item)
            done.add(item)
        nxt = events[k + 1] if k + 1 < len(events) else None
        if nxt is not None and nxt.type == "item_started":
            continue  # the same advance is still refilling
        ready = [i for i in deps if i not in done and i not in running and deps[i] <= done]
        if len(running) < min(slots, len(running) + len(ready)):
            short += 1
    return {"items": len(items), "makespan_s": makespan, "ideal_s": ideal, "ratio": makespan / ideal, "underfilled": short}


def bench_long_sequence(workflow, n: int, edge: int = 50) -> dict:
    from apps.executions.engine.orchestrator import start_execution
    from apps.executions.models import StepRun

    execution = start_execution(workflow, {})
    wait_all([execution.pk], timeout=900)
    done = [t for t in StepRun.objects.filter(execution=execution).order_by("id").values_list("finished_at", flat=True)]
    hops = [(b - a).total_seconds() * 1000 for a, b in zip(done, done[1:])]
    return {"steps": n, "first_ms": statistics.median(hops[:edge]), "last_ms": statistics.median(hops[-edge:]), "total_s": (done[-1] - done[0]).total_seconds()}


def bench_engine(pool: str, concurrency: int, queue: str, runs: int, par_runs: int, workflows: dict, raw: dict) -> dict:
    worker = Worker(queue, pool, concurrency)
    worker.start()
    RAW_QUEUE["name"] = queue  # raw Celery on this very worker: the stack's own floor
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
            "raw_chain_here": (run_raw_chain, runs),
            "seq_noop": (engine("seq_noop"), runs),
            "seq_set": (engine("seq_set"), runs),
            "raw_chord_here": (run_raw_chord, par_runs),
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
        print("[bench]   one-step runs ...", file=sys.stderr, flush=True)
        bench_one_step_runs(workflows["one_step"], 100)  # warm-up
        out["one_step"] = bench_one_step_runs(workflows["one_step"], 1000)
        print("[bench]   for_each 500 ...", file=sys.stderr, flush=True)
        out["for_each"] = bench_for_each(workflows["for_each"], 500)
        print("[bench]   dynamic ...", file=sys.stderr, flush=True)
        out["dynamic"] = bench_dynamic(workflows["dynamic"], layered_items(), 4)
        print("[bench]   1,000-step sequence ...", file=sys.stderr, flush=True)
        out["long"] = bench_long_sequence(workflows["long"], 1000)
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


def verdict(holds: bool) -> str:
    return "HOLDS" if holds else "MISSED"


def report(raw: dict, results: list[dict], compile_results: dict, runs: int, par_runs: int) -> bool:
    ok = True
    print()
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}, {platform.system()} {platform.release()}")
    print(f"runs: {runs} per sequential case, {par_runs} per parallel case, after warm-up runs (cases interleaved)")
    print()
    print(f"== baseline: raw Celery on {raw['pool']} ==")
    print(f"| raw chain of 10 no-op tasks | {fmt(raw['raw_chain'])} ms |")
    print(f"| raw chord of 100 no-op tasks + callback | {fmt(raw['raw_chord'])} ms |")
    chain = raw["raw_chain"]["median"]
    chord = raw["raw_chord"]["median"]
    for res in results:
        print()
        print(f"== engine on worker pool: {res['pool']} ==")
        print("| case | end-to-end ms median / p95 | engine's own ms (started_at..finished_at) median / p95 |")
        print("|---|---|---|")
        print(f"| raw Celery chain of 10 on this pool | {fmt(res['raw_chain_here'])} | |")
        print(f"| workflow: 10 sequential `noop` steps (worker steps) | {fmt(res['seq_noop'])} | {fmt(res['seq_noop_inner'])} |")
        print(f"| workflow: 10 sequential `set` steps (local, inline) | {fmt(res['seq_set'])} | {fmt(res['seq_set_inner'])} |")
        print(f"| raw Celery chord of 100 on this pool | {fmt(res['raw_chord_here'])} | |")
        print(f"| workflow: parallel, 100 single-`noop` branches, join all | {fmt(res['parallel'])} | {fmt(res['parallel_inner'])} |")
        a = res["seq_noop_inner"]["median"] / chain
        b = res["parallel_inner"]["median"] / chord
        d = res["one_step"]["runs_per_s"]
        e = res["for_each"]["items_per_s"]
        dyn = res["dynamic"]
        lng = res["long"]
        print()
        print(f"(a) 10 worker steps, engine's own time / raw prefork chain: {res['seq_noop_inner']['median']:.1f} / {chain:.1f} ms = {a:.2f}x  -> target <= 2x: {verdict(a <= 2)}")
        print(f"(b) parallel of 100, engine's own time / raw prefork chord: {res['parallel_inner']['median']:.1f} / {chord:.1f} ms = {b:.2f}x  -> target <= 1.5x: {verdict(b <= 1.5)}")
        print(f"(d) one-step runs: {d:.0f} completed/s (1,000 started in-process at {res['one_step']['start_per_s']:.0f}/s)  -> target >= 150/s: {verdict(d >= 150)}")
        print(f"(e) for_each of 500 noop, concurrency 10: {e:.0f} items/s ({res['for_each']['seconds']:.2f} s)  -> target >= 300/s: {verdict(e >= 300)}")
        print(f"(f) dynamic, {dyn['items']} items of 0.2 s, N=4: makespan {dyn['makespan_s']:.2f} s, ideal {dyn['ideal_s']:.2f} s = {dyn['ratio']:.3f}x, "
              f"moments with a free slot and a ready item: {dyn['underfilled']}  -> target <= 1.10x and 0: {verdict(dyn['ratio'] <= 1.10 and dyn['underfilled'] == 0)}")
        flat = lng["last_ms"] <= lng["first_ms"] * 1.25 + 0.5
        print(f"(g) 1,000-step sequence: median hop {lng['first_ms']:.2f} ms over the first 50, {lng['last_ms']:.2f} ms over the last 50 ({lng['total_s']:.1f} s in all)  -> flat: {verdict(flat)}")
        res["ratios"] = {"a": a, "b": b, "d": d, "e": e, "f": dyn["ratio"], "g_first": lng["first_ms"], "g_last": lng["last_ms"]}
        ok = ok and a <= 2 and b <= 1.5 and d >= 150 and e >= 300 and dyn["ratio"] <= 1.10 and dyn["underfilled"] == 0 and flat
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
    parser.add_argument("--runs", type=int, default=30, help="measured runs per sequential case (default 30)")
    parser.add_argument("--parallel-runs", type=int, default=None, help="measured runs per 100-wide case (default runs/2, at least 10)")
    parser.add_argument("--compile-runs", type=int, default=200, help="runs for the 50-node compile case (500-node: a fifth)")
    parser.add_argument("--pools", default="threads:8,prefork:8", help="engine worker pools, pool:concurrency,... (default threads:8,prefork:8)")
    parser.add_argument("--baseline", default="prefork:2", help="raw Celery baseline pool (default prefork:2)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    par_runs = args.parallel_runs or max(10, args.runs // 2)

    queue = f"wbbench-{uuid.uuid4().hex[:6]}"
    setup_environment(queue)
    from django.contrib.auth import get_user_model

    from apps.workflows.services import create_workflow

    owner, _ = get_user_model().objects.get_or_create(username="bench", defaults={"email": "bench@example.com"})
    tag = uuid.uuid4().hex[:6]
    noop = {"type": "activity", "activity": "noop", "params": {}}
    workflows = {
        "seq_noop": create_workflow(owner=owner, name=f"bench seq noop {tag}", definition=sequence_definition("noop")),
        "seq_set": create_workflow(owner=owner, name=f"bench seq set {tag}", definition=sequence_definition("set")),
        "parallel": create_workflow(owner=owner, name=f"bench parallel {tag}", definition=parallel_definition()),
        "one_step": create_workflow(owner=owner, name=f"bench one step {tag}", definition={"format_version": 1, "nodes": [{"id": "only", **noop}]}),
        "for_each": create_workflow(owner=owner, name=f"bench for_each {tag}", definition={"format_version": 1, "nodes": [
            {"id": "each", "type": "loop", "mode": "for_each", "items": "$.input.items", "concurrency": 10, "aggregate": "count", "body": {"nodes": [{"id": "item", **noop}]}},
        ]}),
        "dynamic": create_workflow(owner=owner, name=f"bench dynamic {tag}", definition={"format_version": 1, "nodes": [
            {"id": "build", "type": "dynamic", "items": "$.input.items", "max_concurrent": 4, "activity": "delay", "params": {"seconds": "$.item.duration"}},
        ]}),
        "long": create_workflow(owner=owner, name=f"bench 1000 steps {tag}", definition=sequence_definition("noop", 1000)),
    }
    print("[bench] (c) validate/compile ...", file=sys.stderr, flush=True)
    compile_results = bench_compile(args.compile_runs)
    pool, _, conc = args.baseline.partition(":")
    print(f"[bench] baseline: raw Celery on -P {pool} -c {conc} ...", file=sys.stderr, flush=True)
    raw = bench_raw(pool, int(conc or 2), args.runs, par_runs)
    results = []
    for item in args.pools.split(","):
        pool, _, conc = item.partition(":")
        print(f"[bench] engine on -P {pool} -c {conc} ...", file=sys.stderr, flush=True)
        results.append(bench_engine(pool, int(conc or 8), queue, args.runs, par_runs, workflows, raw))
    ok = report(raw, results, compile_results, args.runs, par_runs)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"baseline": raw, "engine": results, "compile": compile_results}, indent=2, default=str))
    print()
    print("targets: " + ("all hold" if ok else "at least one missed (see above)"))
    print("command: .venv/bin/python benchmarks/engine.py " + " ".join(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
