"""Dashboard render time with 10,000 runs (issue 8: under 2 s), and the chart module alone
with 10,000-point series (downsampled for drawing).

    .venv/bin/python benchmarks/metrics_dashboard.py

Inserts 10,000 ExecutionMetric rows (and 20,000 StepMetric rows) spread over the last
7 days for one workflow in the dev database (removed at the end), then renders
/metrics/ through Django's test client as a superuser: range=week with hour buckets
(168 points), range=day with minute buckets (1,440 points), and the week filtered to
the workflow. Median of 5 renders after one warm-up.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "local"))


def main() -> int:
    import devstack

    os.environ.update(devstack.ensure_env())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflowsite.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from apps.metrics import charts
    from apps.metrics.models import ExecutionMetric, StepMetric
    from apps.workflows.services import create_workflow

    call_command("migrate", verbosity=0)
    settings.ALLOWED_HOSTS = ["*"]
    rng = random.Random(20261123)
    admin, _ = User.objects.get_or_create(username="bench-dashboard", defaults={"is_superuser": True, "is_staff": True})
    admin.is_superuser = admin.is_staff = True
    admin.save()
    wf = create_workflow(owner=admin, name=f"bench dashboard {uuid.uuid4().hex[:6]}", definition={"format_version": 1, "nodes": [], "edges": []})
    now = timezone.now()
    base = 9_000_000_000 + rng.randrange(1_000_000) * 100_000
    runs, steps = [], []
    for i in range(10_000):
        finished = now - timedelta(seconds=rng.uniform(0, 7 * 86400))
        duration = rng.lognormvariate(5, 0.6) * (20 if rng.random() < 0.002 else 1)
        failed = rng.random() < 0.05
        runs.append(ExecutionMetric(execution_id=base + i, workflow=wf, status="failed" if failed else "completed", trigger="api",
                                    error_type=rng.choice(["HttpError", "StepTimeout", "ValueError"]) if failed else "", created_at=finished, started_at=finished,
                                    finished_at=finished, duration_ms=duration, step_count=2))
        for node in ("fetch", "store"):
            steps.append(StepMetric(execution_id=base + i, workflow=wf, node_id=node, node_type="activity", activity="http.request", status="completed",
                                    started_at=finished, finished_at=finished, duration_ms=duration / 2, queue_wait_ms=rng.uniform(0.5, 20)))
    ExecutionMetric.objects.bulk_create(runs, batch_size=2000)
    StepMetric.objects.bulk_create(steps, batch_size=2000)
    client = Client()
    client.force_login(admin)
    try:
        for label, params in [("week, hour buckets (168 points)", {"range": "week"}), ("day, minute buckets (1,440 points)", {"range": "day", "bucket": "minute"}),
                              ("week, workflow filter", {"range": "week", "workflow": wf.pk})]:
            client.get("/metrics/", params)  # warm-up
            times = []
            for _ in range(5):
                started = time.perf_counter()
                response = client.get("/metrics/", params)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            print(f"/metrics/ {label}: median {statistics.median(times):.0f} ms, max {max(times):.0f} ms ({len(response.content) // 1024} KiB)")
        points = [(now - timedelta(minutes=10_000 - i), rng.lognormvariate(5, 0.6)) for i in range(10_000)]
        times = []
        for _ in range(5):
            started = time.perf_counter()
            svg = charts.line_chart([charts.Series("P50", "s1", points), charts.Series("P95", "s2", [(t, v * 2) for t, v in points])], title="10,000 points")
            times.append((time.perf_counter() - started) * 1000)
        print(f"charts.line_chart, 2 series x 10,000 points: median {statistics.median(times):.1f} ms, {svg.count(',')} coordinates drawn")
        times = []
        bar_times = [p[0] for p in points]
        for _ in range(5):
            started = time.perf_counter()
            charts.stacked_bars(bar_times, [charts.Stack("ok", "ok", [1] * 10_000), charts.Stack("fail", "f1", [rng.randrange(3) for _ in range(10_000)])], title="bars")
            times.append((time.perf_counter() - started) * 1000)
        print(f"charts.stacked_bars, 2 stacks x 10,000 bars (merged to the width): median {statistics.median(times):.1f} ms")
    finally:
        ExecutionMetric.objects.filter(workflow=wf).delete()
        StepMetric.objects.filter(workflow=wf).delete()
        wf.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
