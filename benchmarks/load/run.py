"""Load tests: a real stack (web server, Celery worker) on a database of its own, driven by Locust.

    .venv/bin/python benchmarks/load/run.py api         # 100 API users on a realistic mix, 5 minutes
    .venv/bin/python benchmarks/load/run.py inflight    # 500 runs of 5 one-second delay steps, in flight at once
    .venv/bin/python benchmarks/load/run.py burst       # 1,000 one-step runs from 50 clients
    .venv/bin/python benchmarks/load/run.py servers     # the api mix on daphne and on uvicorn, side by side

Options: --duration (seconds, api/servers), --users, --runs, --server uvicorn|daphne, --web-workers,
--worker-concurrency, --grace (seconds to wait for started runs after the load ends; default 120).

Each prints p50/p95/p99 per endpoint (over every request), answers by status, runs started and completed per second, and lost
runs: started but not finished `--grace` seconds after the load ended. Exits 1 if any answer was 5xx or
any run was lost. The stack runs on database wb_bench_load and a queue of its own, beside (not instead
of) `make run`; the embedded PostgreSQL/Redis are started if needed. Logs: .data/logs/load-*.log.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "local"))

from benchmarks.harness import percentile, use_database  # noqa: E402

LOGS = ROOT / ".data" / "logs"
DB_NAME = "wb_bench_load"
# The stack's and this process's (sessions made here must be valid there).
SECRET_KEY = "load-test-only-" + "k" * 40

DEFINITIONS = {
    "one": {"format_version": 1, "nodes": [{"id": "only", "type": "activity", "activity": "noop", "params": {"value": "$.input.n"}}], "edges": []},
    "mix": {
        "format_version": 1,
        "nodes": [
            {"id": "a", "type": "activity", "activity": "set", "params": {"values": {"x": "$.input.n"}}},
            {"id": "b", "type": "activity", "activity": "noop", "params": {"value": "{{ $.vars.x }}"}},
            {"id": "c", "type": "activity", "activity": "log", "params": {"message": "x is {{ $.vars.x }}"}},
        ],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}],
    },
    "five": {
        "format_version": 1,
        "nodes": [{"id": f"s{i}", "type": "activity", "activity": "delay", "params": {"seconds": 1}} for i in range(1, 6)],
        "edges": [{"from": f"s{i}", "to": f"s{i + 1}"} for i in range(1, 5)],
    },
}


def say(message: str) -> None:
    print(f"[load] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#
# The stack
#


class LoadStack:
    def __init__(self, args: argparse.Namespace, server: str, web_workers: int):
        self.args = args
        self.server = server
        self.web_workers = web_workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.queue = f"load-{uuid.uuid4().hex[:6]}"
        self.procs: list[subprocess.Popen] = []
        self.env = {
            **os.environ,
            "WB_CELERY_QUEUE": self.queue,
            "DJANGO_SETTINGS_MODULE": "workflowsite.settings",
            # Production-like: no DEBUG (no query log, no debug pages), plain HTTP on loopback.
            "DEBUG": "false",
            "SECRET_KEY": SECRET_KEY,
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            # The load comes from one address with one user: rate limits would measure themselves.
            "API_THROTTLE_USER": "1000000/minute",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> None:
        import run as local_run

        LOGS.mkdir(parents=True, exist_ok=True)
        web_log = open(LOGS / f"load-web-{self.queue}.log", "ab")
        argv = local_run.web_argv(sys.executable, "127.0.0.1", self.port, workers=self.web_workers, server=self.server)
        self.procs.append(subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=web_log, stderr=subprocess.STDOUT))
        worker_log = open(LOGS / f"load-worker-{self.queue}.log", "ab")
        for i in range(self.args.worker_processes):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workflowsite", "worker", "-P", "threads", "-c", str(self.args.worker_concurrency),
                 "-Q", self.queue, "-n", f"{self.queue}-{i}@%h", "--without-gossip", "--without-mingle", "-l", "WARNING"],
                cwd=ROOT, env=self.env, stdout=worker_log, stderr=subprocess.STDOUT,
            ))
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=3) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                self.stop()
                raise SystemExit(f"the stack did not become ready; see {LOGS}/load-*-{self.queue}.log")
            time.sleep(0.5)
        say(f"stack ready: {self.server} x{self.web_workers} on {self.url}, worker {self.args.worker_processes} x "
            f"{self.args.worker_concurrency} threads, queue {self.queue}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def prepare() -> dict:
    """The load's user, token and workflows (created once), and a few finished runs to read."""
    import django

    django.setup()
    from django.contrib.auth.models import User

    from apps.accounts.services import issue_token
    from apps.workflows.models import Workflow
    from apps.workflows.services import create_workflow

    user, _ = User.objects.get_or_create(username="load")
    _, token_key = issue_token(user)
    workflows = {}
    for key, definition in DEFINITIONS.items():
        name = f"load {key}"
        workflow = Workflow.objects.filter(owner=user, name=name).first() or create_workflow(owner=user, name=name, definition=definition)
        workflows[key] = workflow.pk
    return {"token": token_key, "workflows": workflows}


def check_websocket(stack: LoadStack, data: dict) -> str:
    """Open a live page's websocket on a run of five one-second steps, as a logged-in browser would; count
    the updates pushed within 20 s (the catch-up on connect, then one per step or so)."""
    from django.contrib.auth.models import User
    from django.test import Client
    from websockets.sync.client import connect

    run_id = seed_runs(stack, data, count=1, workflow="five")[0]
    browser = Client()
    browser.force_login(User.objects.get(username="load"))
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    ws_url = stack.url.replace("http://", "ws://") + f"/ws/executions/{run_id}/"
    updates = 0
    deadline = time.monotonic() + 20
    with connect(ws_url, additional_headers={"Cookie": cookie, "Origin": stack.url}, open_timeout=10) as ws:
        while time.monotonic() < deadline:
            try:
                ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            except Exception as exc:  # closed by the server: say how
                return f"websocket closed after {updates} updates: {exc}"
            updates += 1
    return f"websocket: {updates} live updates in 20 s" + (" (ok)" if updates >= 2 else " (FAILED: expected 2 or more)")


def seed_runs(stack: LoadStack, data: dict, count: int = 20, workflow: str = "mix") -> list[int]:
    ids = []
    for _ in range(count):
        request = urllib.request.Request(
            f"{stack.url}/api/v1/workflows/{data['workflows'][workflow]}/runs", data=b'{"input": {"n": 1}}', method="POST",
            headers={"Authorization": f"Token {data['token']}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            ids.append(json.loads(response.read())["id"])
    return ids


#
# Watching runs in the database
#


class RunWatcher(threading.Thread):
    """Samples how many of the load's runs are unfinished (in flight) twice a second."""

    def __init__(self, since_id: int):
        super().__init__(daemon=True)
        self.since_id = since_id
        self.peak = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        from django.db import close_old_connections

        from apps.executions.models import Execution

        while not self.stopping.wait(0.5):
            close_old_connections()
            in_flight = Execution.objects.filter(pk__gt=self.since_id, finished_at__isnull=True).count()
            self.peak = max(self.peak, in_flight)


def last_execution_id() -> int:
    from apps.executions.models import Execution

    return Execution.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def settle(run_ids: list[int], grace: float) -> dict:
    """Wait up to `grace` seconds for the runs to finish; their timings and the lost ones."""
    from django.db import close_old_connections

    from apps.executions.models import Execution

    deadline = time.monotonic() + grace
    while True:
        close_old_connections()
        unfinished = Execution.objects.filter(pk__in=run_ids, finished_at__isnull=True).count()
        if unfinished == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    rows = list(Execution.objects.filter(pk__in=run_ids).values("pk", "status", "created_at", "finished_at"))
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    finished = [r for r in rows if r["finished_at"]]
    first = min((r["created_at"] for r in rows), default=None)
    last_start = max((r["created_at"] for r in rows), default=None)
    last_end = max((r["finished_at"] for r in finished), default=None)
    durations = [(r["finished_at"] - r["created_at"]).total_seconds() for r in finished]
    return {
        "started": len(run_ids),
        "found": len(rows),
        "by_status": by_status,
        "lost": len(run_ids) - len(finished),
        "start_span_s": (last_start - first).total_seconds() if first and last_start else 0.0,
        "end_span_s": (last_end - first).total_seconds() if first and last_end else 0.0,
        "run_p50_s": percentile(durations, 50) if durations else None,
        "run_p95_s": percentile(durations, 95) if durations else None,
    }


#
# Running Locust and reporting
#


def run_locust(stack: LoadStack, data: dict, *, scenario: str, users: int, spawn_rate: float, duration: int,
               runs: int = 0, workflow: str = "", seed: list[int] | None = None, no_wait: bool = False) -> dict:
    out_dir = Path(tempfile.mkdtemp(prefix="wbload-"))
    env = {
        **os.environ,
        "WB_LOAD_SCENARIO": scenario,
        "WB_LOAD_TOKEN": data["token"],
        "WB_LOAD_WORKFLOWS": json.dumps(data["workflows"]),
        "WB_LOAD_WORKFLOW": workflow,
        "WB_LOAD_RUNS": str(runs),
        "WB_LOAD_OUT": str(out_dir / "out.json"),
        "WB_LOAD_SEED_RUNS": json.dumps(seed or []),
        "WB_LOAD_NO_WAIT": "1" if no_wait else "0",
    }
    argv = [sys.executable, "-m", "locust", "-f", str(Path(__file__).with_name("locustfile.py")), "--headless",
            "-u", str(users), "-r", str(spawn_rate), "-t", f"{duration}s", "--host", stack.url,
            "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "30"]
    started = time.monotonic()
    with open(LOGS / f"load-locust-{stack.queue}.log", "ab") as log:
        subprocess.run(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - started
    with open(out_dir / "out.json") as fh:
        out = json.load(fh)
    shutil.rmtree(out_dir, ignore_errors=True)
    return {"elapsed_s": elapsed, **out}


def print_report(title: str, result: dict, runs: dict | None, peak: int | None) -> bool:
    """Print the figures; True when nothing failed (no 5xx, nothing lost)."""
    print()
    print(f"== {title} ==")
    print(f"{'endpoint':34} {'requests':>9} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    timings = result["timings"]
    rows = sorted(timings.items()) + [("all", [t for values in timings.values() for t in values])]
    for name, values in rows:
        if not values:
            continue
        print(f"{name:34} {len(values):>9} {len(values) / result['elapsed_s']:7.1f} {percentile(values, 50):7.0f} "
              f"{percentile(values, 95):7.0f} {percentile(values, 99):7.0f}")
    statuses = result["statuses"]
    print("answers by status: " + ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())))
    errors = {code: n for code, n in statuses.items() if not code.startswith("2")}
    print("errors by status: " + (", ".join(f"{code}: {n}" for code, n in sorted(errors.items())) or "none"))
    ok = not any(code.startswith("5") or code == "0" for code in errors)
    if not statuses:
        print("no request was made: see .data/logs/load-locust-*.log")
        ok = False
    if runs is not None:
        started, finished = runs["started"], runs["started"] - runs["lost"]
        start_rate = started / runs["start_span_s"] if runs["start_span_s"] else float("nan")
        done_rate = finished / runs["end_span_s"] if runs["end_span_s"] else float("nan")
        print(f"runs: {started} started ({start_rate:.1f}/s over {runs['start_span_s']:.1f} s), {finished} finished "
              f"({done_rate:.1f}/s, first start to last finish {runs['end_span_s']:.1f} s), by status {runs['by_status']}")
        if runs["run_p50_s"] is not None:
            print(f"run duration (created to finished): p50 {runs['run_p50_s']:.2f} s, p95 {runs['run_p95_s']:.2f} s")
        if peak is not None:
            print(f"most runs in flight at once: {peak}")
        print(f"lost runs (not finished {runs.get('grace', 0):.0f} s after the load): {runs['lost']}")
        ok = ok and runs["lost"] == 0
    return ok


#
# Scenarios
#


def scenario_api(args, server: str | None = None, web_workers: int | None = None, title: str | None = None,
                 no_wait: bool = False) -> bool:
    stack = LoadStack(args, server or args.server, web_workers or args.web_workers)
    data = prepare()
    stack.start()
    try:
        seed = seed_runs(stack, data)
        before = last_execution_id()
        result = run_locust(stack, data, scenario="api", users=args.users or 100, spawn_rate=args.spawn_rate or 20,
                            duration=args.duration or 300, seed=seed, no_wait=no_wait)
        runs = settle(result["started_runs"], args.grace)
        runs["grace"] = args.grace
        del before
        ok = print_report(title or f"api mix: {args.users or 100} users, {result['elapsed_s']:.0f} s, "
                          f"{stack.server} x{stack.web_workers}", result, runs, None)
        if no_wait:  # the servers comparison: websockets must work on each
            websocket = check_websocket(stack, data)
            print(websocket)
            ok = ok and "(ok)" in websocket
        return ok
    finally:
        stack.stop()


def scenario_starts(args, *, workflow: str, default_runs: int, default_users: int, title: str) -> bool:
    stack = LoadStack(args, args.server, args.web_workers)
    data = prepare()
    stack.start()
    watcher = RunWatcher(last_execution_id())
    watcher.start()
    try:
        runs_wanted = args.runs or default_runs
        result = run_locust(stack, data, scenario="starts", users=args.users or default_users, spawn_rate=args.spawn_rate or 50,
                            duration=args.duration or 600, runs=runs_wanted, workflow=workflow)
        runs = settle(result["started_runs"], args.grace)
        runs["grace"] = args.grace
        watcher.stopping.set()
        return print_report(f"{title}: {runs_wanted} runs from {args.users or default_users} clients, {stack.server} "
                            f"x{stack.web_workers}, worker {args.worker_processes} x {args.worker_concurrency}", result, runs, watcher.peak)
    finally:
        watcher.stopping.set()
        stack.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["api", "inflight", "burst", "servers"])
    parser.add_argument("--duration", type=int, help="seconds of load (api: default 300)")
    parser.add_argument("--users", type=int, help="concurrent clients")
    parser.add_argument("--spawn-rate", type=float)
    parser.add_argument("--runs", type=int, help="runs to start (inflight 500, burst 1000)")
    parser.add_argument("--server", default=os.environ.get("WB_WEB_SERVER", "uvicorn"), choices=["uvicorn", "daphne"])
    parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WB_WEB_WORKERS", "2")))
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument("--worker-concurrency", type=int, default=int(os.environ.get("WB_WORKER_CONCURRENCY", "8")))
    parser.add_argument("--grace", type=float, default=120.0, help="seconds to wait for started runs to finish")
    parser.add_argument("--rounds", type=int, default=2, help="servers: interleaved rounds")
    args = parser.parse_args(argv)

    use_database(DB_NAME)
    os.environ.update({"DJANGO_SETTINGS_MODULE": "workflowsite.settings", "SECRET_KEY": SECRET_KEY, "DEBUG": "false", "LOG_LEVEL": "WARNING"})
    say(f"migrating {DB_NAME}")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)

    if args.scenario == "api":
        ok = scenario_api(args)
    elif args.scenario == "inflight":
        ok = scenario_starts(args, workflow="five", default_runs=500, default_users=50, title="500 in flight (5 steps of 1 s)")
    elif args.scenario == "burst":
        ok = scenario_starts(args, workflow="one", default_runs=1000, default_users=50, title="burst of one-step runs")
    else:
        # Closed loop (no think time): the most each server answers. Interleaved rounds, because on a shared
        # machine the background load moves between runs more than servers differ.
        ok = True
        for round_no in range(1, args.rounds + 1):
            for server, workers in (("daphne", 1), ("uvicorn", 1), ("uvicorn", 2)):
                title = f"round {round_no}: {server} x{workers}, {args.users or 100} users without think time, {args.duration or 300} s"
                ok = scenario_api(args, server, workers, title=title, no_wait=True) and ok
    print()
    print("verdict: " + ("no 5xx, no lost run" if ok else "FAILED: 5xx answers or lost runs (see above)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
