"""Answering "come back later" instead of 500 when a shared resource is exhausted or down.

Two causes are recognised anywhere in an exception's chain:

- **database**: no connection could be had: the process's pool waited WB_DB_POOL_TIMEOUT seconds in
  vain (psycopg_pool.PoolTimeout, which is also what an unreachable PostgreSQL looks like through the
  pool), or PostgreSQL refused a new connection ("too many clients already").
- **redis**: Redis (task queue, caches, live updates) is unreachable: redis-py's connection and timeout
  errors, and kombu's OperationalError when Celery cannot publish a task.

Either answers 503 with Retry-After (WB_RETRY_AFTER_SECONDS) and a message naming the cause: from DRF
views through the API's exception handler, from other views through `OverloadMiddleware.process_exception`,
and from inner middleware (a session or user loaded before the view) by turning their 500 into the 503.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator

import psycopg
import redis
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.signals import got_request_exception
from django.db import connection, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from kombu.exceptions import OperationalError as KombuOperationalError
from psycopg_pool import PoolTimeout, TooManyRequests

logger = logging.getLogger("workflow.capacity")

DATABASE = "database"
REDIS = "redis"

MESSAGES = {
    DATABASE: (
        "The server is at capacity: no database connection became free in time "
        "(or the database is unreachable). Retry after the number of seconds in Retry-After."
    ),
    REDIS: (
        "Redis (task queue, live updates) is unavailable. Anything this request saved is kept, and its "
        "work is dispatched once Redis is back: check before you retry."
    ),
}
CODES = {DATABASE: "database_unavailable", REDIS: "redis_unavailable"}

# "too many clients already" (max_connections reached), "remaining connection slots are reserved ...",
# "too many connections for role/database ..." (a CONNECTION LIMIT reached).
_SERVER_FULL = ("too many clients", "remaining connection slots", "too many connections for")


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def classify(exc: BaseException | None) -> str | None:
    """DATABASE or REDIS when `exc` (or what caused it) means that resource is exhausted or down, else None."""
    for error in _chain(exc):
        if isinstance(error, (PoolTimeout, TooManyRequests)):
            return DATABASE
        if isinstance(error, psycopg.OperationalError) and any(text in str(error) for text in _SERVER_FULL):
            return DATABASE
        if isinstance(error, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, KombuOperationalError)):
            return REDIS
    return None


_last_logged: dict[str, float] = {}


def _log(cause: str, request: HttpRequest, exc: BaseException | None) -> None:
    """One warning per cause and 5 s: a saturated server should not also flood its log."""
    now = time.monotonic()
    if now - _last_logged.get(cause, 0.0) >= 5.0:
        _last_logged[cause] = now
        logger.warning(
            "503 (%s): %s %s: %s",
            cause,
            request.method,
            request.path,
            (exc.__cause__ or exc).__class__.__name__ if exc else "see the error above",
        )


def unavailable_response(cause: str, request: HttpRequest | None = None) -> HttpResponse:
    """The 503 for `cause`: JSON for the API (and clients asking for JSON), plain text for pages."""
    retry_after = str(settings.WB_RETRY_AFTER_SECONDS)
    wants_json = request is None or request.path.startswith("/api/") or "json" in request.headers.get("Accept", "")
    if wants_json:
        response: HttpResponse = JsonResponse({"detail": MESSAGES[cause], "code": CODES[cause]}, status=503)
    else:
        response = HttpResponse(MESSAGES[cause], status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = retry_after
    response["Cache-Control"] = "no-store"
    return response


# The attribute that marks a request answered 503 for a capacity cause, read by SkipCapacityErrors.
CAUSE_ATTR = "wb_unavailable"


def remember_cause(request: HttpRequest, cause: str) -> None:
    setattr(request, CAUSE_ATTR, cause)


def _remember_cause(sender, request: HttpRequest | None = None, **kwargs) -> None:
    """Django sends this while handling any uncaught exception (sys.exc_info() holds it, also under ASGI)."""
    cause = classify(sys.exc_info()[1])
    if cause and request is not None:
        remember_cause(request, cause)


got_request_exception.connect(_remember_cause, dispatch_uid="wb-overload-cause")


class OverloadMiddleware:
    """Turns a database or Redis outage into 503 + Retry-After (see the module docstring).

    Sits near the top of MIDDLEWARE: every middleware below it is inside, so their failures reach it as
    500 responses marked by `_remember_cause`.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        return self._finish(request, self.get_response(request))

    async def _acall(self, request: HttpRequest):
        return self._finish(request, await self.get_response(request))

    def _finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        cause = getattr(request, CAUSE_ATTR, None)
        if cause and response.status_code == 500:
            _log(cause, request, None)
            return unavailable_response(cause, request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        cause = classify(exception)
        if cause is None:
            return None
        remember_cause(request, cause)
        _log(cause, request, exception)
        return unavailable_response(cause, request)


class SkipCapacityErrors:
    """A logging filter for django.request: drops its ERROR line for each of our 503s (a saturated server
    would write one per refused request); `_log` above writes one warning per cause every 5 s instead."""

    def filter(self, record) -> bool:
        request = getattr(record, "request", None)
        return not (getattr(record, "status_code", None) == 503 and getattr(request, CAUSE_ATTR, None))


#
# Pool use, for /readyz and /metrics
#


def database_pool_stats() -> dict[str, int] | None:
    """This process's pool of the default database: max, size (open), in_use, idle, waiting, and
    timeouts (requests that gave up waiting, since start); None without a pool or before its first use."""
    db = connections["default"]
    pool = getattr(db, "_connection_pools", {}).get(db.alias)
    if pool is None:
        return None
    stats = pool.get_stats()
    size = stats.get("pool_size", 0)
    idle = stats.get("pool_available", 0)
    return {
        "max": stats.get("pool_max", 0),
        "size": size,
        "in_use": max(0, size - idle),
        "idle": idle,
        "waiting": stats.get("requests_waiting", 0),
        "timeouts": stats.get("requests_errors", 0),
    }


def database_server_connections() -> tuple[int, int] | None:
    """(connections open on the PostgreSQL server, its max_connections), or None if it cannot be asked."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), current_setting('max_connections')::int FROM pg_stat_activity WHERE "
                "backend_type = 'client backend'"
            )
            used, limit = cursor.fetchone()
    except Exception:
        return None
    return int(used), int(limit)
