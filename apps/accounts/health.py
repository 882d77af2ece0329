"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.common.redis_store import client
from workflowsite.celery import app

from . import overload
from .tasks import beat_heartbeat_key


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive: always 200, so a liveness probe never restarts a web process for an outage
    elsewhere. It still says what it sees: Redis (one ping, 1 s at most) and this process's database pool,
    without taking a database connection (a saturated pool must not make the probe wait).

    {"status": "ok"} or {"status": "degraded", "down": ["redis: ConnectionError"]}, plus "database_pool".
    """
    redis_problem = _check_redis()
    body: dict[str, object] = {"status": "ok"}
    if redis_problem:
        body = {"status": "degraded", "down": [redis_problem]}
    pool = overload.database_pool_stats()
    if pool is not None:
        body["database_pool"] = pool
    return JsonResponse(body)


#
# Checks: each returns None when fine, else a short message naming what is down.
#


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure means not ready
        # Django wraps the driver's error: name the original (PoolTimeout says "no connection free in time").
        return f"database: {(exc.__cause__ or exc).__class__.__name__}"


def _check_redis() -> str | None:
    try:
        client().ping()
        return None
    except Exception as exc:
        return f"redis: {exc.__class__.__name__}"


def _check_workers() -> str | None:
    try:
        replies = app.control.inspect(timeout=1.0).ping() or {}
    except Exception as exc:
        return f"celery workers: {exc.__class__.__name__}"
    if not replies:
        return "celery workers: none answered"
    return None


def _check_beat() -> str | None:
    """Beat runs `beat_heartbeat` every 10 s; the key it sets expires after 60 s."""
    try:
        raw = client().get(beat_heartbeat_key())
    except Exception as exc:
        return f"beat: {exc.__class__.__name__}"
    if raw is None:
        return "beat: no heartbeat"
    try:
        age = time.time() - float(raw)
    except ValueError:
        return "beat: unreadable heartbeat"
    return None if age < 60 else f"beat: last heartbeat {age:.0f} s ago"


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready (200) when the database, Redis and at least one Celery worker answer; else 503 naming what is down.

    Beat is always reported, but only counts towards readiness when
    WB_READYZ_REQUIRE_BEAT is on (one beat serves many web processes, so a web
    process should not be taken out of rotation because beat is restarting).
    """
    checks: dict[str, str | None] = {"database": _check_database(), "redis": _check_redis()}
    # Workers and beat are reached through Redis: only ask them when Redis is up.
    if checks["redis"] is None:
        checks["workers"] = _check_workers()
        checks["beat"] = _check_beat()
    else:
        checks["workers"] = "celery workers: unreachable (redis is down)"
        checks["beat"] = "beat: unreachable (redis is down)"
    required = ["database", "redis", "workers"] + (["beat"] if settings.WB_READYZ_REQUIRE_BEAT else [])
    down = [checks[name] for name in required if checks[name]]
    body: dict[str, object] = {
        "status": "ready" if not down else "unavailable",
        "checks": {name: ("ok" if problem is None else problem) for name, problem in checks.items()},
    }
    if down:
        body["down"] = down
    # This process's pool (in_use of max, requests waiting for a connection, timeouts since start).
    pool = overload.database_pool_stats()
    if pool is not None:
        body["database_pool"] = pool
    return JsonResponse(body, status=200 if not down else 503)
