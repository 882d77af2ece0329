"""Collection: one statement per finished run, after the commit that finished it.

The engine calls `record_on_commit(execution_id)` from Runtime._finish_execution
(a one-line hook). After that transaction commits, `record_executions` inserts the
run's ExecutionMetric row and derives its StepMetric rows from StepRun in the same
SQL statement (data-modifying CTEs), so the step path pays nothing and a run pays
one round trip. It is idempotent (ON CONFLICT on execution_id), and the periodic
task backfills runs whose hook never ran (a worker killed right after the commit).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection, transaction

from .models import HISTOGRAM_BOUNDS_MS

logger = logging.getLogger("workflow.metrics")

_RECORD_SQL = """
WITH runs AS (
    INSERT INTO metrics_executionmetric
        (execution_id, workflow_id, status, trigger, error_type, created_at, started_at, finished_at, duration_ms, step_count, correlation_id)
    SELECT e.id, e.workflow_id, e.status, e.trigger, COALESCE(e.error->>'type', ''), e.created_at,
           COALESCE(e.started_at, e.created_at), e.finished_at,
           GREATEST(0, EXTRACT(EPOCH FROM (e.finished_at - COALESCE(e.started_at, e.created_at))) * 1000),
           (SELECT count(*) FROM executions_steprun s WHERE s.execution_id = e.id), e.correlation_id
    FROM executions_execution e
    WHERE e.id = ANY(%(ids)s) AND e.finished_at IS NOT NULL
      AND e.status IN ('completed', 'failed', 'cancelled', 'continued')
    ON CONFLICT (execution_id) DO NOTHING
    RETURNING execution_id, workflow_id, status
), steps AS (
    INSERT INTO metrics_stepmetric
        (execution_id, workflow_id, node_id, node_type, activity, attempt, status, error_type, started_at, finished_at, duration_ms, queue_wait_ms)
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
SELECT 'step', label::text, width_bucket(duration_ms, %(bounds)s::float8[]), count(*), sum(duration_ms) FROM steps GROUP BY label, 3
"""


def enabled() -> bool:
    return getattr(settings, "WB_METRICS_ENABLED", True)


def record_on_commit(execution_id: int) -> None:
    """The engine's hook: record the run's metrics once the transaction finishing it commits.

    Called inside that transaction (Runtime._finish_execution). Costs nothing when
    WB_METRICS_ENABLED is off; never raises into the engine.
    """
    if not enabled():
        return
    transaction.on_commit(lambda: _record_quietly([execution_id]), robust=True)


def _record_quietly(ids: list[int]) -> None:
    try:
        record_executions(ids)
    except Exception:  # metrics must never fail a run; the periodic backfill retries
        logger.exception("could not record metrics of executions %s", ids)


def record_executions(ids: list[int]) -> int:
    """Insert metrics for the finished runs among `ids` not recorded yet; returns how many.

    Also adds the runs and their step durations to the Prometheus counters in Redis
    (best effort: Redis being down costs those counts, not the rows).
    """
    if not ids:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        # Metrics can be re-derived (the periodic backfill), so this commit need not wait for
        # the WAL flush: saves an fsync per run. A crash loses at most the last instant's rows.
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(_RECORD_SQL, {"ids": list(ids), "bounds": list(HISTOGRAM_BOUNDS_MS)})
        rows = cursor.fetchall()
    runs = {label: n for kind, label, _, n, _ in rows if kind == "run"}
    steps = [(label, bucket, n, total) for kind, label, bucket, n, total in rows if kind == "step"]
    if runs:
        try:
            from .prometheus import add_run_counts

            add_run_counts(runs, steps)
        except Exception as exc:
            logger.warning("could not add run counters to Redis: %s", exc.__class__.__name__)
    return sum(runs.values())


def backfill(*, hours: int = 48, limit: int = 5000) -> int:
    """Record runs of the last `hours` that finished over a minute ago without metrics."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT e.id FROM executions_execution e
            WHERE e.created_at >= now() - make_interval(hours => %s)
              AND e.finished_at < now() - interval '1 minute'
              AND e.status IN ('completed', 'failed', 'cancelled', 'continued')
              AND NOT EXISTS (SELECT 1 FROM metrics_executionmetric m WHERE m.execution_id = e.id)
            ORDER BY e.id LIMIT %s
            """,
            [hours, limit],
        )
        ids = [row[0] for row in cursor.fetchall()]
    return record_executions(ids) if ids else 0
