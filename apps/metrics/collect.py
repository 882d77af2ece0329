"""Collection: finished runs are recorded in batches, off the engine's path.

The engine writes nothing for metrics: a finished run's Execution and StepRun rows already hold
every figure. A collector in each worker's background thread (apps/executions/worker.py) calls
`collect_recent()` every WB_METRICS_INTERVAL seconds; one SQL statement (data-modifying CTEs)
inserts an ExecutionMetric row for each run that finished in the last few minutes and has none
yet, and derives its StepMetric rows from StepRun. An advisory lock keeps it to one collector at a
time, ON CONFLICT makes it idempotent, and the periodic task's `backfill()` records whatever the
collectors missed (all workers down for longer than the window). So a run costs the engine
nothing, and the collector about a millisecond per batch.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .models import HISTOGRAM_BOUNDS_MS
from .prometheus import add_run_counts

logger = logging.getLogger("workflow.metrics")

_FINISHED = "('completed', 'failed', 'cancelled', 'continued')"

# Which runs a call records; each must select execution ids.
_BY_IDS = "SELECT unnest(%(ids)s::bigint[])"
_UNRECORDED = f"""
    SELECT e.id FROM executions_execution e
    WHERE e.finished_at >= %(since)s AND e.finished_at < %(settle)s
      AND e.status IN {_FINISHED}
      AND NOT EXISTS (SELECT 1 FROM metrics_executionmetric m WHERE m.execution_id = e.id)
    ORDER BY e.finished_at LIMIT %(limit)s
"""

# An arbitrary constant naming the collector's advisory lock.
_LOCK_KEY = 0x57424D43  # "WBMC"

_RECORD_SQL = """
WITH runs AS (
    INSERT INTO metrics_executionmetric
        (execution_id, workflow_id, status, trigger, error_type, created_at, started_at, finished_at, duration_ms,
         step_count, correlation_id)
    SELECT e.id, e.workflow_id, e.status, e.trigger, COALESCE(e.error->>'type', ''), e.created_at,
           COALESCE(e.started_at, e.created_at), e.finished_at,
           GREATEST(0, EXTRACT(EPOCH FROM (e.finished_at - COALESCE(e.started_at, e.created_at))) * 1000),
           (SELECT count(*) FROM executions_steprun s WHERE s.execution_id = e.id), e.correlation_id
    FROM executions_execution e
    WHERE e.id IN ({selection}) AND e.finished_at IS NOT NULL
      AND e.status IN {finished}
    ON CONFLICT (execution_id) DO NOTHING
    RETURNING execution_id, workflow_id, status
), steps AS (
    INSERT INTO metrics_stepmetric
        (execution_id, workflow_id, node_id, node_type, activity, attempt, status, error_type, started_at, finished_at,
         duration_ms, queue_wait_ms)
    SELECT s.execution_id, runs.workflow_id, s.node_id, s.node_type, s.activity, s.attempt, s.status,
           COALESCE(s.error->>'type', ''), s.started_at, s.finished_at,
           GREATEST(0, EXTRACT(EPOCH FROM (s.finished_at - s.started_at)) * 1000),
           CASE WHEN s.dispatched_at IS NOT NULL AND s.dispatched_at <= s.started_at
                THEN EXTRACT(EPOCH FROM (s.started_at - s.dispatched_at)) * 1000 END
    FROM executions_steprun s JOIN runs ON runs.execution_id = s.execution_id
    WHERE s.started_at IS NOT NULL AND s.finished_at IS NOT NULL
    RETURNING CASE WHEN activity <> '' THEN activity ELSE node_type END AS label, duration_ms
)
SELECT 'run', status::text, 0, count(*), 0::float8 FROM runs GROUP BY status
UNION ALL
SELECT 'step', label::text, width_bucket(duration_ms, %(bounds)s::float8[]), count(*), sum(duration_ms)
FROM steps GROUP BY label, 3
"""


def enabled() -> bool:
    return getattr(settings, "WB_METRICS_ENABLED", True)


def collect_recent(*, window_seconds: int = 600, limit: int = 5000) -> int:
    """Record runs that finished in the last `window_seconds` without metrics; returns how many.

    Called by every worker's background thread; the one holding the advisory lock does the work,
    the others return 0 at once.
    """
    if not enabled():
        return 0
    return _record(_UNRECORDED, _window(window_seconds, 0, limit), lock=True)


def record_executions(ids: list[int]) -> int:
    """Insert metrics for the finished runs among `ids` not recorded yet; returns how many."""
    if not ids:
        return 0
    return _record(_BY_IDS, {"ids": list(ids)})


def backfill(*, hours: int = 48, limit: int = 5000) -> int:
    """Record runs of the last `hours` that finished over a minute ago without metrics."""
    return _record(_UNRECORDED, _window(hours * 3600, 60, limit))


def _window(seconds: int, settle_seconds: int, limit: int) -> dict:
    """Bounds as parameters (not now() - interval in SQL) so the finished_at index serves the scan."""
    now = timezone.now()
    return {
        "since": now - timedelta(seconds=seconds),
        "settle": now - timedelta(seconds=settle_seconds),
        "limit": limit,
    }


def _record(selection: str, params: dict, *, lock: bool = False) -> int:
    """Run the recording statement over `selection`'s runs, then add them to the Prometheus counters.

    Redis being down costs those counts, not the rows.
    """
    sql = _RECORD_SQL.format(selection=selection, finished=_FINISHED)
    with transaction.atomic(), connection.cursor() as cursor:
        if lock:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK_KEY])
            if not cursor.fetchone()[0]:
                return 0
        # Metrics can be re-derived (the backfill), so this commit need not wait for the WAL
        # flush. A crash loses at most the last instant's rows, which the backfill records again.
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(sql, {**params, "bounds": list(HISTOGRAM_BOUNDS_MS)})
        rows = cursor.fetchall()
    runs = {label: n for kind, label, _, n, _ in rows if kind == "run"}
    steps = [(label, bucket, n, total) for kind, label, bucket, n, total in rows if kind == "step"]
    if runs:
        try:
            add_run_counts(runs, steps)
        except Exception as exc:
            logger.warning("could not add run counters to Redis: %s", exc.__class__.__name__)
    return sum(runs.values())
