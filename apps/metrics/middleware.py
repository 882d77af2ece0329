"""Request middlewares: the correlation id and access log, and request counters for /metrics.

Both work in sync and async stacks (Daphne serves us over ASGI), so neither forces
Django to wrap the chain in thread hops.
"""

from __future__ import annotations

import logging
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from . import correlation
from .prometheus import count_request

access_logger = logging.getLogger("workflow.request")


class _Middleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        before = self.before(request)
        response = self.get_response(request)
        return self.after(request, response, before)

    async def _acall(self, request):
        before = self.before(request)
        response = await self.get_response(request)
        return self.after(request, response, before)


class CorrelationIdMiddleware(_Middleware):
    """Takes X-Request-ID (or makes an id), keeps it in a contextvar for the request,
    echoes it in the response header and writes one access log line."""

    def before(self, request):
        cid = correlation.clean_or_new(request.headers.get(correlation.HEADER))
        request.correlation_id = cid
        return correlation.set_correlation_id(cid), time.perf_counter()

    def after(self, request, response, before):
        token, started = before
        response[correlation.HEADER] = request.correlation_id
        elapsed_ms = (time.perf_counter() - started) * 1000
        access_logger.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            elapsed_ms,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed_ms, 1),
            },
        )
        try:
            correlation.reset_correlation_id(token)
        except ValueError:  # reset from another context (a streaming response): clearing is enough
            correlation.set_correlation_id("")
        return response


class RequestMetricsMiddleware(_Middleware):
    """Counts requests by method and status for wb_http_requests_total (see prometheus.py)."""

    def before(self, request):
        return None

    def after(self, request, response, before):
        count_request(request.method, response.status_code)
        return response
