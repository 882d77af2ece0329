"""What the operations page and /metrics report about the running system."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.executions.models import Execution
from workflowsite.celery import app

# Steps that wait by design (timers, signals, approvals, children, retry backoff) do not make a run stuck.
_WAITING_BY_DESIGN = ("timer", "signal_wait", "approval", "child_workflow", "await_child")


def stuck_runs(*, minutes: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Running runs with no step activity (created, dispatched, started, heartbeat or
    finished) for `minutes` (default WB_STUCK_RUN_MINUTES), oldest activity first."""
    minutes = settings.WB_STUCK_RUN_MINUTES if minutes is None else minutes
    before = timezone.now() - timedelta(minutes=minutes)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT e.id, e.workflow_id, w.name, e.started_at,
                   COALESCE(a.last, e.started_at, e.created_at) AS last_activity
            FROM executions_execution e
            JOIN workflows_workflow w ON w.id = e.workflow_id
            LEFT JOIN LATERAL (
                SELECT max(GREATEST(s.created_at, s.dispatched_at, s.started_at, s.heartbeat_at, s.finished_at)) AS last
                FROM executions_steprun s WHERE s.execution_id = e.id
            ) a ON TRUE
            WHERE e.status = 'running' AND COALESCE(a.last, e.started_at, e.created_at) < %s
              AND NOT EXISTS (
                  SELECT 1 FROM executions_steprun s WHERE s.execution_id = e.id
                  AND (s.status = 'scheduled' OR (s.status = 'waiting' AND s.node_type = ANY(%s)))
              )
            ORDER BY last_activity LIMIT %s
            """,
            [before, list(_WAITING_BY_DESIGN), limit],
        )
        rows = cursor.fetchall()
    return [
        {
            "id": eid,
            "workflow_id": wid,
            "workflow": name,
            "started_at": started,
            "last_activity": last,
            "idle_minutes": int((timezone.now() - last).total_seconds() // 60),
        }
        for eid, wid, name, started, last in rows
    ]


def recent_failures(*, limit: int = 20) -> list[Any]:
    return list(Execution.objects.filter(status="failed").select_related("workflow").order_by("-finished_at")[:limit])


def workers() -> list[dict[str, Any]]:
    """Each worker answering: name, active tasks, queues, pool size (celery inspect, ~1 s)."""
    try:
        inspect = app.control.inspect(timeout=1.0)
        stats: dict[str, Any] = inspect.stats() or {}
        active = inspect.active() or {}
        queues = inspect.active_queues() or {}
    except Exception as exc:
        return [{"name": f"unreachable: {exc.__class__.__name__}", "error": True}]
    out = []
    for name in sorted(set(stats) | set(active)):
        pool = (stats.get(name) or {}).get("pool") or {}
        out.append(
            {
                "name": name,
                "active": len(active.get(name) or []),
                "concurrency": pool.get("max-concurrency"),
                "queues": ", ".join(q.get("name", "") for q in queues.get(name) or []),
                "processed": sum(((stats.get(name) or {}).get("total") or {}).values()),
            }
        )
    return out
