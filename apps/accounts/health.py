"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@require_GET
@never_cache
def healthz(request):
    """The process is alive; nothing else is checked."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except Exception as exc:  # any failure means not ready
        return f"database: {exc.__class__.__name__}"


def _check_redis() -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        return None
    except Exception as exc:
        return f"redis: {exc.__class__.__name__}"


def _check_workers() -> str | None:
    from workflowsite.celery import app

    try:
        replies = app.control.inspect(timeout=1.0).ping() or {}
    except Exception as exc:
        return f"celery workers: {exc.__class__.__name__}"
    if not replies:
        return "celery workers: none answered"
    return None


@require_GET
@never_cache
def readyz(request):
    """Ready when the database, Redis and at least one Celery worker answer; 503 naming what is down."""
    checks = {"database": _check_database(), "redis": _check_redis()}
    # Workers are reached through Redis: only ask them when Redis is up.
    checks["workers"] = _check_workers() if checks["redis"] is None else "celery workers: unreachable (redis is down)"
    down = [problem for problem in checks.values() if problem]
    body = {
        "status": "ready" if not down else "unavailable",
        "checks": {name: ("ok" if problem is None else problem) for name, problem in checks.items()},
    }
    if down:
        body["down"] = down
    return JsonResponse(body, status=200 if not down else 503)
