"""Live-update benchmark: `.venv/bin/python benchmarks/live_updates.py`.

1. Event commit -> DOM change. A real browser (Debian's chromium through Playwright) keeps a live
   execution page open on a real ASGI server (daphne, websocket through the htmx ws extension). This
   script then commits events the way the engine does (an ExecutionEvent row and the run's last_seq in
   one transaction, `publish.on_commit` after it), one at a time, and a MutationObserver in the page
   records when each event's timeline row appears. Latency = DOM time - commit time (both read from the
   same machine's clock: `time.time()` in an on_commit callback registered before the publish, and
   `performance.timeOrigin + performance.now()` in the page). 10 warm-up events, then --events (100).

   Each update carries only what changed (the touched step's row and graph node, the counts, the status
   badge, the new timeline row). The baseline, measured in the same run unless --no-baseline: a second
   daphne serves `benchmarks/live_baseline_asgi.py`, whose consumer sends the whole panel on every update
   (status panel, graph SVG, steps table, timeline row: what every update was before issue 16), to a
   second page watching a second, identical execution; commits alternate between the two pages (which
   one goes first alternates too), so both see the same machine load.

2. The execution page of a 50-node workflow: server time for the whole page (Django test client in
   this process, median of --renders) and the browser's navigation to `load` (median of --renders).

It uses its own database, `wb_bench_live`, on the embedded (or $DATABASE_URL's) PostgreSQL server,
migrated on first use, so nobody's data is touched; no Celery worker is needed.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "local"))

BENCH_DB = "wb_bench_live"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"]
PASSWORD = "bench-password-1"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_env() -> dict[str, str]:
    import devstack
    import psycopg

    env = {**os.environ, **devstack.ensure_env()}
    url = urlsplit(env["DATABASE_URL"])
    admin = psycopg.connect(urlunsplit((url.scheme, url.netloc, "/postgres", url.query, "")), autocommit=True)
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
        admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    admin.close()
    env["DATABASE_URL"] = urlunsplit((url.scheme, url.netloc, "/" + BENCH_DB, url.query, ""))
    env.update(DEBUG="true", WB_CHANNELS_PREFIX="wbbench", LOG_LEVEL="WARNING")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    return env


def definition_50() -> dict:
    """50 activity nodes: a chain with a fan-out of 4 branches in the middle, all joining again."""
    nodes = [{"id": f"n{i:02d}", "type": "activity", "activity": "noop"} for i in range(50)]
    edges = []
    for i in range(49):
        edges.append({"from": f"n{i:02d}", "to": f"n{i + 1:02d}"})
    for i in range(10, 40, 6):
        edges.append({"from": f"n{i:02d}", "to": f"n{i + 3:02d}"})
    return {"format_version": 1, "nodes": nodes, "edges": edges}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--renders", type=int, default=10)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between events")
    parser.add_argument("--no-baseline", action="store_true", help="skip the whole-panel baseline")
    args = parser.parse_args()

    env = prepare_env()
    os.environ.update(env)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API keeps a loop in this thread
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflowsite.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import transaction
    from django.test import Client
    from django.utils import timezone
    from playwright.sync_api import sync_playwright

    from apps.executions.engine import publish
    from apps.executions.models import Execution, ExecutionEvent, StepRun
    from apps.workflows.models import Workflow
    from apps.workflows.services import create_workflow

    Workflow.objects.filter(name__startswith="bench-live").delete()
    user = User.objects.filter(username="bench-live").first() or User.objects.create_user("bench-live", password=PASSWORD)
    user.set_password(PASSWORD)
    user.save()
    workflow = create_workflow(owner=user, name="bench-live 50 nodes", definition=definition_50())

    def running_execution():
        """A run of the 50-node workflow: 20 steps completed, 4 running, their events."""
        now = timezone.now()
        execution = Execution.objects.create(workflow=workflow, definition=workflow.definition, status="running", started_at=now, created_by=user)
        steps = []
        for i, node in enumerate(workflow.definition["nodes"]):
            status = "completed" if i < 20 else ("running" if i < 24 else None)
            if status:
                steps.append(StepRun(execution=execution, node_id=node["id"], node_type="activity", activity="noop", status=status, started_at=now, finished_at=now if status == "completed" else None))
        StepRun.objects.bulk_create(steps)
        running = StepRun.objects.filter(execution=execution, status="running").first()
        seq = 0
        with transaction.atomic():
            for step in StepRun.objects.filter(execution=execution):
                seq += 1
                ExecutionEvent.objects.create(execution=execution, seq=seq, type="step_started", node_id=step.node_id, step=step)
            Execution.objects.filter(pk=execution.pk).update(last_seq=seq)
        return execution, running, seq

    execution, running, seq = running_execution()
    watched = [("changes", execution, running, seq)]
    if not args.no_baseline:
        watched.append(("baseline", *running_execution()))

    log = open(ROOT / ".data" / "logs" / "bench-daphne.log", "ab")
    servers: dict[str, subprocess.Popen] = {}
    bases: dict[str, str] = {}
    apps = {"changes": "workflowsite.asgi:application", "baseline": "benchmarks.live_baseline_asgi:application"}
    for name, *_rest in watched:
        port = _free_port()
        servers[name] = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), apps[name]], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        bases[name] = f"http://127.0.0.1:{port}"
    base = bases["changes"]
    try:
        for name, server in servers.items():
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(bases[name] + "/accounts/login/", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("daphne did not start; see .data/logs/bench-daphne.log") from None
                    time.sleep(0.2)

        # -- server-side render of the 50-node execution page --
        client = Client()
        client.force_login(user)
        page_url = f"/executions/{execution.pk}/"
        for _ in range(3):
            client.get(page_url)
        server_ms = []
        for _ in range(args.renders):
            t0 = time.perf_counter()
            response = client.get(page_url)
            server_ms.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        page_bytes = len(response.content)

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto("/accounts/login/")
            page.get_by_label("Username").fill("bench-live")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/")

            # -- browser load of the 50-node execution page --
            load_ms = []
            for i in range(args.renders + 2):
                page.goto(page_url, wait_until="load")
                nav = page.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
                if i >= 2:
                    load_ms.append(nav["loadEventEnd"] - nav["startTime"])

            # -- commit -> DOM latency over the websocket --
            pages = {}
            for name, ex, _running, _seq in watched:
                watcher = page if name == "changes" else browser.new_context(base_url=bases[name], viewport={"width": 1280, "height": 900}).new_page()
                if name != "changes":
                    watcher.goto("/accounts/login/")
                    watcher.get_by_label("Username").fill("bench-live")
                    watcher.get_by_label("Password").fill(PASSWORD)
                    watcher.get_by_role("button", name="Log in").click()
                    watcher.wait_for_url("**/")
                watcher.goto(f"/executions/{ex.pk}/")
                watcher.wait_for_selector("body.ws-open")
                watcher.evaluate(
                    """() => {
                        window.__seen = {};
                        const list = document.getElementById('timeline-rows');
                        new MutationObserver((records) => {
                            const t = performance.timeOrigin + performance.now();
                            for (const r of records) for (const n of r.addedNodes) {
                                if (n.nodeType === 1 && n.dataset && n.dataset.seq && !(n.dataset.seq in window.__seen)) window.__seen[n.dataset.seq] = t;
                            }
                        }).observe(list, {childList: true});
                    }"""
                )
                pages[name] = watcher
            commit_at: dict[str, dict[int, float]] = {name: {} for name, *_rest in watched}
            seqs = {name: seq for name, _ex, _running, seq in watched}
            total = args.events + 10

            def commit(name: str, execution, running, seq: int, i: int) -> None:
                # As the engine does: the event and last_seq in one transaction, the publish after commit.
                with transaction.atomic():
                    Execution.objects.filter(pk=execution.pk).update(last_seq=seq)
                    event = ExecutionEvent.objects.create(execution=execution, seq=seq, type="variables_updated", node_id=running.node_id, step=running, payload={"set": {"i": i}})
                    transaction.on_commit(lambda: commit_at[name].__setitem__(seq, time.time() * 1000))
                    publish.on_commit(execution.pk, [event])

            # Playwright's sync API runs an event loop in this thread, where Channels' async_to_sync
            # refuses to work: commit from a thread of our own, as a worker would.
            with ThreadPoolExecutor(max_workers=1) as engine:
                for i in range(total):
                    for name, ex, run_step, _seq in (watched if i % 2 == 0 else watched[::-1]):
                        seqs[name] += 1
                        engine.submit(commit, name, ex, run_step, seqs[name], i).result()
                        pages[name].wait_for_function("(s) => s in window.__seen", arg=str(seqs[name]), timeout=10_000)
                        time.sleep(args.gap)
            latencies = {}
            for name, *_rest in watched:
                seen = pages[name].evaluate("window.__seen")
                latencies[name] = [seen[str(s)] - commit_at[name][s] for s in sorted(commit_at[name])][10:]
            browser.close()
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(10)
        Workflow.objects.filter(pk=workflow.pk).delete()

    def summary(values: list[float]) -> str:
        return f"p50 {statistics.median(values):.1f} ms, p95 {_pct(values, 95):.1f} ms, max {max(values):.1f} ms"

    load = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)")
    print(f"commit -> DOM over the websocket, {len(latencies['changes'])} events, updates of only what changed: {summary(latencies['changes'])}")
    if "baseline" in latencies:
        print(f"baseline, the whole panel on every update (same run, alternating): {summary(latencies['baseline'])}")
    print(f"execution page, 50-node graph: server render median {statistics.median(server_ms):.1f} ms (p95 {_pct(server_ms, 95):.1f}), {page_bytes // 1024} KiB; browser navigation to load median {statistics.median(load_ms):.1f} ms (p95 {_pct(load_ms, 95):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
