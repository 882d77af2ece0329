"""Shared set-up for benchmarks: the embedded servers, a dedicated database, a real worker.

    with bench_stack("wb_bench_dynamic", worker_concurrency=12) as stack:
        ...  # Django is set up against the dedicated database; stack.worker is running
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "local"))


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Stack:
    def __init__(self, database_url: str, queue: str):
        self.database_url = database_url
        self.queue = queue
        self.worker: subprocess.Popen | None = None


def use_database(db_name: str) -> str:
    """Start the embedded servers if needed, create `db_name` if missing, point DATABASE_URL at it
    (benchmarks keep their runs out of the dev database). Returns the URL."""
    import devstack
    import psycopg

    os.environ.update(devstack.ensure_env())
    base = urlsplit(os.environ["DATABASE_URL"])
    admin_url = urlunsplit((base.scheme, base.netloc, "/postgres", base.query, ""))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone():
            conn.execute(f'CREATE DATABASE "{db_name}"')
    database_url = urlunsplit((base.scheme, base.netloc, "/" + db_name, base.query, ""))
    os.environ["DATABASE_URL"] = database_url
    return database_url


@contextlib.contextmanager
def bench_stack(db_name: str, *, worker_concurrency: int = 8, pool: str = "threads", extra_env: dict | None = None):
    database_url = use_database(db_name)
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    os.environ.update({"DATABASE_URL": database_url, "WB_CELERY_QUEUE": queue, "DJANGO_SETTINGS_MODULE": "workflowsite.settings", "LOG_LEVEL": "WARNING"})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    stack = Stack(database_url, queue)
    log = open(ROOT / ".data" / f"{queue}.log", "ab")
    stack.worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workflowsite", "worker", "-P", pool, "-c", str(worker_concurrency), "-Q", queue,
         "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "-l", "WARNING"],
        cwd=ROOT, env={**os.environ, "WB_SWEEP_INTERVAL": "5", **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT,
    )
    from workflowsite.celery import app

    deadline = time.monotonic() + 60
    while not app.control.inspect(destination=[f"{queue}@{os.uname().nodename}"], timeout=0.5).ping():
        if time.monotonic() > deadline or stack.worker.poll() is not None:
            raise SystemExit("the benchmark worker did not start")
    try:
        yield stack
    finally:
        stack.worker.terminate()
        try:
            stack.worker.wait(20)
        except subprocess.TimeoutExpired:
            stack.worker.kill()


def bench_user():
    from django.contrib.auth.models import User

    user, _ = User.objects.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    return user


def wait_finished(execution, timeout: float = 600.0, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while True:
        execution.refresh_from_db(fields=["status", "finished_at", "started_at", "output", "error"])
        if execution.is_finished:
            return execution
        if time.monotonic() > deadline:
            raise SystemExit(f"execution {execution.pk} did not finish in {timeout} s")
        time.sleep(interval)
