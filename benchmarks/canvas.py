"""Canvas and dependency-graph benchmark: `.venv/bin/python benchmarks/canvas.py`.

1. A 500-item dynamic node's dependency graph on the live execution page: the server's render of the
   whole page, the browser's navigation to `load` (the graph is in the HTML), then commit -> DOM for
   item updates: this script commits `item_started` events the way the engine does (the dynamic step's
   state, the event and the run's last_seq in one transaction, the publish after commit) and a
   MutationObserver records when the item's class changes in the page.
2. The canvas editor with a 210-node workflow: the server's render of the edit page, and frame times
   in the browser (requestAnimationFrame deltas) while a node is dragged across the canvas.

Own database (`wb_bench_live`, as benchmarks/live_updates.py), no Celery worker needed.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from live_updates import CHROMIUM, CHROMIUM_ARGS, PASSWORD, _free_port, _pct, prepare_env  # noqa: E402


def items_500(seed: int = 20240601) -> list[dict]:
    """500 items in about 20 layers, each depending on 1-3 items of the layers above."""
    rng = random.Random(seed)
    items: list[dict] = []
    for n in range(500):
        layer = n // 25
        candidates = [i for i in range(max(0, (layer - 3) * 25), layer * 25)]
        deps = rng.sample(candidates, k=min(len(candidates), rng.randint(1, 3))) if candidates else []
        items.append({"id": f"pkg-{n:03d}", "depends_on": [f"pkg-{d:03d}" for d in sorted(deps)]})
    return items


def nodes_210() -> dict:
    nodes = [{"id": f"n{i}", "type": "activity", "activity": "noop"} for i in range(210)]
    edges = [{"from": f"n{i // 2}", "to": f"n{i}"} for i in range(1, 210)]
    return {"format_version": 1, "nodes": nodes, "edges": edges}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--renders", type=int, default=8)
    parser.add_argument("--gap", type=float, default=0.05)
    args = parser.parse_args()

    env = prepare_env()
    os.environ.update(env)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflowsite.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import transaction
    from django.test import Client
    from django.utils import timezone
    from playwright.sync_api import sync_playwright

    from apps.executions.engine import publish
    from apps.executions.engine.nodes.dynamic import build_state
    from apps.executions.models import DynamicItem, Execution, ExecutionEvent, StepRun
    from apps.workflows.models import Workflow
    from apps.workflows.services import create_workflow

    Workflow.objects.filter(name__startswith="bench-canvas").delete()
    user = User.objects.filter(username="bench-live").first() or User.objects.create_user("bench-live", password=PASSWORD)
    user.set_password(PASSWORD)
    user.save()
    items = items_500()
    node = {"id": "build", "type": "dynamic", "items": items, "max_concurrent": 8, "activity": "noop"}
    workflow = create_workflow(owner=user, name="bench-canvas 500 items", definition={"format_version": 1, "nodes": [node]})
    big = create_workflow(owner=user, name="bench-canvas 210 nodes", definition=nodes_210())
    now = timezone.now()
    execution = Execution.objects.create(workflow=workflow, definition=workflow.definition, status="running", started_at=now, created_by=user)
    state = build_state(items, node)
    step = StepRun.objects.create(execution=execution, node_id="build", node_type="dynamic", status="waiting", started_at=now, state=state)
    # Each item's status lives in its own row, as the engine keeps it (engine/nodes/dynamic.py).
    DynamicItem.objects.bulk_create([
        DynamicItem(step=step, index=idx, item_id=item_id, waiting=len(state["deps"].get(item_id, [])), priority=state["priority"].get(item_id, 0.0))
        for idx, item_id in enumerate(state["ids"])
    ])
    seq = 1
    ExecutionEvent.objects.create(execution=execution, seq=seq, type="dynamic_started", node_id="build", step=step, payload={"items": 500})
    Execution.objects.filter(pk=execution.pk).update(last_seq=seq)

    port = _free_port()
    log = open(ROOT / ".data" / "logs" / "bench-daphne.log", "ab")
    server = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "workflowsite.asgi:application"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/accounts/login/", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("daphne did not start; see .data/logs/bench-daphne.log") from None
                time.sleep(0.2)

        client = Client()
        client.force_login(user)

        def server_render(url: str) -> tuple[list[float], int]:
            for _ in range(2):
                client.get(url)
            times = []
            for _ in range(args.renders):
                t0 = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.status_code
            return times, len(response.content)

        page_url, edit_url = f"/executions/{execution.pk}/", f"/workflows/{big.pk}/edit/"
        page_ms, page_bytes = server_render(page_url)
        edit_ms, edit_bytes = server_render(edit_url)

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto("/accounts/login/")
            page.get_by_label("Username").fill("bench-live")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/")

            load_ms = []
            for i in range(args.renders + 2):
                page.goto(page_url, wait_until="load")
                nav = page.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
                if i >= 2:
                    load_ms.append(nav["loadEventEnd"] - nav["startTime"])
            assert page.locator(".dep-graph .item").count() == 500

            # -- commit -> item recoloured --
            page.wait_for_selector("body.ws-open")
            page.evaluate(
                """() => {
                    window.__seen = {};
                    const graph = document.querySelector('.dep-graph');
                    new MutationObserver((records) => {
                        const t = performance.timeOrigin + performance.now();
                        for (const r of records) {
                            const id = r.target.getAttribute && r.target.getAttribute('data-item');
                            if (id && r.target.classList.contains('status-running') && !(id in window.__seen)) window.__seen[id] = t;
                        }
                    }).observe(graph, {subtree: true, attributes: true, attributeFilter: ['class']});
                }"""
            )
            commit_at: dict[str, float] = {}
            ready = [i["id"] for i in items if not i["depends_on"]]

            def commit(seq: int, item_id: str) -> None:
                with transaction.atomic():
                    Execution.objects.select_for_update().get(pk=execution.pk)
                    DynamicItem.objects.filter(step=step, item_id=item_id).update(status=DynamicItem.Status.RUNNING, started_at=timezone.now(), attempts=1)
                    Execution.objects.filter(pk=execution.pk).update(last_seq=seq)
                    event = ExecutionEvent.objects.create(execution=execution, seq=seq, type="item_started", node_id="build", step=step, payload={"item": item_id, "in_flight": 1})
                    transaction.on_commit(lambda: commit_at.__setitem__(item_id, time.time() * 1000))
                    publish.on_commit(execution.pk, [event])

            total = min(args.updates + 5, len(ready))
            with ThreadPoolExecutor(max_workers=1) as engine:
                for item_id in ready[:total]:
                    seq += 1
                    engine.submit(commit, seq, item_id).result()
                    page.wait_for_function("(s) => s in window.__seen", arg=item_id, timeout=10_000)
                    time.sleep(args.gap)
            seen = page.evaluate("window.__seen")
            latencies = [seen[i] - commit_at[i] for i in ready[:total]][5:]

            # -- the canvas: frame times while dragging a node of a 210-node workflow --
            page.goto(edit_url, wait_until="load")
            page.wait_for_selector("#canvas-editor.canvas-ready")
            page.get_by_role("button", name="Zoom in").click()
            target = page.locator("svg.wb-canvas .node[data-node-id='n0'] .node-label")
            box = target.bounding_box()
            page.evaluate(
                """() => {
                    window.__frames = []; window.__last = performance.now(); window.__run = true;
                    const tick = (t) => { window.__frames.push(t - window.__last); window.__last = t; if (window.__run) requestAnimationFrame(tick); };
                    requestAnimationFrame(tick);
                }"""
            )
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x, y)
            page.mouse.down()
            for k in range(120):
                page.mouse.move(x + 2 * k, y + (k % 30))
            page.mouse.up()
            frames = page.evaluate("window.__run = false, window.__frames.slice(2)")
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
        Workflow.objects.filter(pk__in=[workflow.pk, big.pk]).delete()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"500-item dependency graph page: server render median {statistics.median(page_ms):.1f} ms (p95 {_pct(page_ms, 95):.1f}), {page_bytes // 1024} KiB; browser navigation to load median {statistics.median(load_ms):.1f} ms (p95 {_pct(load_ms, 95):.1f})")
    print(f"item update commit -> recoloured item, {len(latencies)} updates: p50 {statistics.median(latencies):.1f} ms, p95 {_pct(latencies, 95):.1f} ms, max {max(latencies):.1f} ms")
    print(f"210-node canvas: edit page server render median {statistics.median(edit_ms):.1f} ms (p95 {_pct(edit_ms, 95):.1f}), {edit_bytes // 1024} KiB")
    print(f"210-node canvas, dragging a node: {len(frames)} frames, median {statistics.median(frames):.1f} ms, p95 {_pct(frames, 95):.1f} ms, max {max(frames):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
