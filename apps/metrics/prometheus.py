"""The Prometheus exposition of GET /metrics, written by prometheus_client.

Every figure here already lives in a shared store — Redis counters (requests,
finished runs, step durations) or Postgres (active runs, runs started) — because
we run many web processes and worker threads. So the client library's per-process
Counter/Gauge objects (which would need its multiprocess mode and a shared
directory on every machine) are not used: a custom collector reads the stores at
scrape time and yields metric families, and the library writes the text format.

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
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

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


def _le(upper_seconds: float) -> str:
    """A bucket's `le` label as it has always been written ("0.1", "1", "60"), so series keep their identity."""
    return repr(upper_seconds) if not float(upper_seconds).is_integer() else str(int(upper_seconds))


def _decode(raw: dict) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()
    }


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
    """The whole exposition for one scrape (text format 0.0.4)."""
    flush_requests()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SharedStoreCollector())
    return generate_latest(registry).decode("utf-8")


class SharedStoreCollector(Collector):
    """Reads Redis and PostgreSQL at each scrape; registered on a fresh registry per scrape."""

    def collect(self) -> Iterator[Metric]:
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

        yield GaugeMetricFamily("wb_up", "1 when the metrics store (Redis) answered this scrape.", value=redis_up)

        requests = CounterMetricFamily(
            "wb_http_requests_total",
            "HTTP requests served, by method and status code (all web processes).",
            labels=["method", "status"],
        )
        for field, n in sorted(http.items()):
            method, _, status = field.partition("|")
            requests.add_metric([method, status], int(n))
        yield requests

        with connection.cursor() as cursor:
            cursor.execute("SELECT last_value, is_called FROM executions_execution_id_seq")
            last_value, is_called = cursor.fetchone()
        yield CounterMetricFamily(
            "wb_executions_started_total",
            "Runs started (the execution id sequence: every id handed out).",
            value=last_value if is_called else 0,
        )

        finished_runs = CounterMetricFamily(
            "wb_executions_finished_total",
            "Runs finished, by final status (counted when their metrics are recorded).",
            labels=["status"],
        )
        for status, n in sorted(finished.items()):
            finished_runs.add_metric([status], int(n))
        yield finished_runs

        yield _step_durations(buckets, step_count, step_sum)

        active = _active_counts()
        runs_active = GaugeMetricFamily("wb_executions_active", "Runs not finished, by status.", labels=["status"])
        for status in ("pending", "running", "waiting", "paused"):
            runs_active.add_metric([status], active.get(status, 0))
        yield runs_active

        yield GaugeMetricFamily(
            "wb_executions_stuck",
            f"Running runs with no step activity for {settings.WB_STUCK_RUN_MINUTES} minutes.",
            value=_stuck_count(),
        )

        depth = GaugeMetricFamily(
            "wb_queue_depth", "Messages waiting in a Celery queue (Redis LLEN).", labels=["queue"]
        )
        for queue, waiting in queue_depths().items():
            if waiting is not None:
                depth.add_metric([queue], waiting)
        yield depth

        yield from _database_connections()

        workers = GaugeMetricFamily("wb_workers", "Celery workers answering a ping (cached for a few seconds).")
        alive = worker_count()
        if alive is not None:
            workers.add_metric([], alive)
        yield workers


def _step_durations(
    buckets: dict[str, str], step_count: dict[str, str], step_sum: dict[str, str]
) -> HistogramMetricFamily:
    """Cumulative buckets per activity from the width_bucket counts apps.metrics.collect adds."""
    family = HistogramMetricFamily(
        "wb_step_duration_seconds",
        "Duration of finished step attempts (start to finish), by activity or node type.",
        labels=["activity"],
    )
    bounds = HISTOGRAM_BOUNDS_MS[1:]  # bucket 1 (0 <= d < 1 ms) ends at the second bound
    per_activity: dict[str, list[int]] = {}
    for field, n in buckets.items():
        activity, _, idx = field.rpartition("|")
        counts = per_activity.setdefault(activity, [0] * (len(HISTOGRAM_BOUNDS_MS) + 1))
        counts[min(int(idx), len(HISTOGRAM_BOUNDS_MS))] += int(n)
    for activity in sorted(per_activity):
        counts = per_activity[activity]
        cumulative = 0
        series: list[tuple[str, float]] = []
        for i, upper in enumerate(bounds, start=1):
            cumulative += counts[i]
            series.append((_le(upper / 1000), cumulative))
        total = int(step_count.get(activity, sum(counts)))
        series.append(("+Inf", total))
        family.add_metric([activity], series, sum_value=round(float(step_sum.get(activity, 0)) / 1000, 6))
    return family


def _database_connections() -> Iterator[Metric]:
    """The answering process's connection pool, and the PostgreSQL server's connections against its limit."""
    pool = database_pool_stats()
    if pool is not None:
        connections = GaugeMetricFamily(
            "wb_db_pool_connections", "Connections in this web process's database pool, by state.", labels=["state"]
        )
        connections.add_metric(["in_use"], pool["in_use"])
        connections.add_metric(["idle"], pool["idle"])
        yield connections
        yield GaugeMetricFamily(
            "wb_db_pool_max",
            "Most connections this web process's pool may open (WB_DB_POOL_MAX_SIZE).",
            value=pool["max"],
        )
        yield GaugeMetricFamily(
            "wb_db_pool_waiting",
            "Requests of this web process waiting for a database connection.",
            value=pool["waiting"],
        )
        yield CounterMetricFamily(
            "wb_db_pool_timeouts_total",
            "Requests of this web process that got no connection within WB_DB_POOL_TIMEOUT (answered 503).",
            value=pool["timeouts"],
        )
    server = database_server_connections()
    if server is not None:
        used, limit = server
        yield GaugeMetricFamily(
            "wb_db_server_connections", "Client connections open on the PostgreSQL server (all processes).", value=used
        )
        yield GaugeMetricFamily("wb_db_server_max_connections", "The PostgreSQL server's max_connections.", value=limit)


def _active_counts() -> dict[str, int]:
    rows = (
        Execution.objects.filter(status__in=["pending", "running", "waiting", "paused"])
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["status"]: row["n"] for row in rows}


def _stuck_count() -> int:
    return len(stuck_runs(limit=1000))
