"""Prometheus text exposition (format 0.0.4), written by hand.

Why not prometheus_client: every figure here already lives in a shared store —
Redis counters (requests, finished runs, step durations) or Postgres (active runs,
runs started) — because we run many web processes and worker threads; the client
library's per-process registries would need its multiprocess mode and a shared
directory on every machine. Writing ~10 metric families by hand is smaller.

Request counting: each process counts in memory and adds its counts to one Redis
hash at most every FLUSH_SECONDS (and before answering a scrape), so a request
costs a dict increment, not a Redis round trip; a process that dies loses at most
that many seconds of counts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count

from apps.accounts.overload import database_pool_stats, database_server_connections
from apps.common import redis_store
from apps.executions.models import Execution
from workflowsite.celery import app

from .models import HISTOGRAM_BOUNDS_MS
from .operations import stuck_runs

logger = logging.getLogger("workflow.metrics")

FLUSH_SECONDS = 2.0
WORKER_COUNT_TTL = 10  # seconds a `celery inspect ping` answer is reused


def redis_key(name: str) -> str:
    """Namespaced by the stack (apps.common.redis_store): stacks sharing a Redis keep apart."""
    return redis_store.key("metrics", name)


def _redis():
    """One client (and connection pool) per process: a new one per call costs a connect."""
    return redis_store.client()


#
# HTTP requests (per-process buffer, flushed to Redis)
#

_lock = threading.Lock()
_pending: Counter[str] = Counter()
_last_flush = time.monotonic()


def count_request(method: str, status: int) -> None:
    global _last_flush
    with _lock:
        _pending[f"{method}|{status}"] += 1
        due = time.monotonic() - _last_flush >= FLUSH_SECONDS
    if due:
        flush_requests()


def flush_requests() -> None:
    global _last_flush
    with _lock:
        batch = dict(_pending)
        _pending.clear()
        _last_flush = time.monotonic()
    if not batch:
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for field, n in batch.items():
            pipe.hincrby(redis_key("http"), field, n)
        pipe.execute()
    except Exception as exc:  # counters are best effort: keep them for the next flush
        with _lock:
            _pending.update(batch)
        logger.warning("could not flush request counters: %s", exc.__class__.__name__)


#
# Engine counters (added once per finished run by apps.metrics.collect)
#


def add_run_counts(runs: dict[str, int], steps: Iterable[tuple[str, int, int, float]]) -> None:
    """runs: status -> finished count; steps: (activity, width_bucket index, count, sum_ms)."""
    pipe = _redis().pipeline(transaction=False)
    for status, n in runs.items():
        pipe.hincrby(redis_key("runs_finished"), status, n)
    for activity, bucket, n, total in steps:
        pipe.hincrby(redis_key("step_buckets"), f"{activity}|{bucket}", n)
        pipe.hincrby(redis_key("step_count"), activity, n)
        pipe.hincrbyfloat(redis_key("step_sum_ms"), activity, total)
    pipe.execute()


#
# Exposition
#


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: object) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) and not float(value).is_integer() else str(int(value))


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: object) -> None:
        self.lines.append(f"{name}{_labels(**labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _decode(raw: dict) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()}


def worker_count() -> int | None:
    """Workers answering `celery inspect ping`, cached WORKER_COUNT_TTL seconds (a ping waits ~1 s)."""
    key = redis_store.key("metrics", "workers")
    cached = cache.get(key)
    if cached is not None:
        return cached

    try:
        replies = app.control.inspect(timeout=1.0).ping() or {}
    except Exception:
        return None
    cache.set(key, len(replies), WORKER_COUNT_TTL)
    return len(replies)


def queue_names() -> list[str]:
    return [settings.CELERY_TASK_DEFAULT_QUEUE, *getattr(settings, "WB_METRICS_EXTRA_QUEUES", [])]


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each Celery queue (Redis LLEN of the queue's list, all priorities)."""
    depths: dict[str, int | None] = {}
    try:
        client = redis_store.client(_broker_redis_url())
        for queue in queue_names():
            # kombu keeps priority levels 1-9 in "<queue>\x06\x16<n>" lists next to the plain one.
            keys = [queue] + [f"{queue}\x06\x16{p}" for p in range(1, 10)]
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.llen(key)
            depths[queue] = sum(pipe.execute())
    except Exception:
        for queue in queue_names():
            depths.setdefault(queue, None)
    return depths


def _broker_redis_url() -> str:
    """The broker's Redis database as a redis-py URL (settings give Celery's spelling)."""
    url = settings.REDIS_URL
    db = getattr(settings, "REDIS_DB", 0)
    if url.startswith("unix://"):
        return url.split("?")[0] + f"?db={db}"
    base = url.split("?")[0].rstrip("/")
    parts = base.split("/")
    if len(parts) > 3 and parts[-1].isdigit():
        parts = parts[:-1]
    return "/".join(parts) + f"/{db}"


def render() -> str:
    """The whole exposition for one scrape."""
    flush_requests()
    out = Exposition()
    try:
        client = _redis()
        pipe = client.pipeline(transaction=False)
        for name in ("http", "runs_finished", "step_buckets", "step_count", "step_sum_ms"):
            pipe.hgetall(redis_key(name))
        http, finished, buckets, step_count, step_sum = (_decode(r) for r in pipe.execute())
        redis_up = 1
    except Exception:
        http, finished, buckets, step_count, step_sum = {}, {}, {}, {}, {}
        redis_up = 0

    out.family("wb_up", "gauge", "1 when the metrics store (Redis) answered this scrape.")
    out.sample("wb_up", redis_up)

    out.family("wb_http_requests_total", "counter", "HTTP requests served, by method and status code (all web processes).")
    for field, n in sorted(http.items()):
        method, _, status = field.partition("|")
        out.sample("wb_http_requests_total", int(n), method=method, status=status)

    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value, is_called FROM executions_execution_id_seq")
        last_value, is_called = cursor.fetchone()
    out.family("wb_executions_started_total", "counter", "Runs started (the execution id sequence: every id handed out).")
    out.sample("wb_executions_started_total", last_value if is_called else 0)

    out.family("wb_executions_finished_total", "counter", "Runs finished, by final status (counted when their metrics are recorded).")
    for status, n in sorted(finished.items()):
        out.sample("wb_executions_finished_total", int(n), status=status)

    out.family("wb_step_duration_seconds", "histogram", "Duration of finished step attempts (start to finish), by activity or node type.")
    bounds = HISTOGRAM_BOUNDS_MS[1:]  # bucket 1 (0 <= d < 1 ms) ends at the second bound
    per_activity: dict[str, list[int]] = {}
    for field, n in buckets.items():
        activity, _, idx = field.rpartition("|")
        counts = per_activity.setdefault(activity, [0] * (len(HISTOGRAM_BOUNDS_MS) + 1))
        counts[min(int(idx), len(HISTOGRAM_BOUNDS_MS))] += int(n)
    for activity in sorted(per_activity):
        counts = per_activity[activity]
        cumulative = 0
        for i, upper in enumerate(bounds, start=1):
            cumulative += counts[i]
            out.sample("wb_step_duration_seconds_bucket", cumulative, activity=activity, le=_number(upper / 1000))
        total = int(step_count.get(activity, sum(counts)))
        out.sample("wb_step_duration_seconds_bucket", total, activity=activity, le="+Inf")
        out.sample("wb_step_duration_seconds_sum", round(float(step_sum.get(activity, 0)) / 1000, 6), activity=activity)
        out.sample("wb_step_duration_seconds_count", total, activity=activity)

    out.family("wb_executions_active", "gauge", "Runs not finished, by status.")
    active = _active_counts()
    for status in ("pending", "running", "waiting", "paused"):
        out.sample("wb_executions_active", active.get(status, 0), status=status)

    stuck = _stuck_count()
    out.family("wb_executions_stuck", "gauge", f"Running runs with no step activity for {settings.WB_STUCK_RUN_MINUTES} minutes.")
    out.sample("wb_executions_stuck", stuck)

    out.family("wb_queue_depth", "gauge", "Messages waiting in a Celery queue (Redis LLEN).")
    for queue, depth in queue_depths().items():
        if depth is not None:
            out.sample("wb_queue_depth", depth, queue=queue)

    _database_connections(out)

    workers = worker_count()
    out.family("wb_workers", "gauge", "Celery workers answering a ping (cached for a few seconds).")
    if workers is not None:
        out.sample("wb_workers", workers)
    return out.text()


def _database_connections(out: Exposition) -> None:
    """The answering process's connection pool, and the PostgreSQL server's connections against its limit."""
    pool = database_pool_stats()
    if pool is not None:
        out.family("wb_db_pool_connections", "gauge", "Connections in this web process's database pool, by state.")
        out.sample("wb_db_pool_connections", pool["in_use"], state="in_use")
        out.sample("wb_db_pool_connections", pool["idle"], state="idle")
        out.family("wb_db_pool_max", "gauge", "Most connections this web process's pool may open (WB_DB_POOL_MAX_SIZE).")
        out.sample("wb_db_pool_max", pool["max"])
        out.family("wb_db_pool_waiting", "gauge", "Requests of this web process waiting for a database connection.")
        out.sample("wb_db_pool_waiting", pool["waiting"])
        out.family("wb_db_pool_timeouts_total", "counter", "Requests of this web process that got no connection within WB_DB_POOL_TIMEOUT (answered 503).")
        out.sample("wb_db_pool_timeouts_total", pool["timeouts"])
    server = database_server_connections()
    if server is not None:
        used, limit = server
        out.family("wb_db_server_connections", "gauge", "Client connections open on the PostgreSQL server (all processes).")
        out.sample("wb_db_server_connections", used)
        out.family("wb_db_server_max_connections", "gauge", "The PostgreSQL server's max_connections.")
        out.sample("wb_db_server_max_connections", limit)


def _active_counts() -> dict[str, int]:

    rows = Execution.objects.filter(status__in=["pending", "running", "waiting", "paused"]).values("status").annotate(n=Count("id")).order_by()
    return {row["status"]: row["n"] for row in rows}


def _stuck_count() -> int:
    return len(stuck_runs(limit=1000))
