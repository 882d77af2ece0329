from __future__ import annotations

from django.conf import settings
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.accounts import overload


def exception_handler(exc, context):
    """DRF's handler, with Django's 404/403 shaped like the rest of the API's errors, and a database or
    Redis outage answered 503 with Retry-After (apps.accounts.overload) instead of 500."""
    cause = overload.classify(exc)
    if cause is not None:
        request = context.get("request")
        if request is not None:
            overload.remember_cause(request._request, cause)  # for the logging filter (SkipCapacityErrors)
        overload._log(cause, request, exc)
        return Response(
            {"detail": overload.MESSAGES[cause], "code": overload.CODES[cause]},
            status=503,
            headers={"Retry-After": str(settings.WB_RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
        )
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data.setdefault(
            "code", getattr(getattr(exc, "default_code", None), "lower", lambda: None)() or "error"
        )
    return response
