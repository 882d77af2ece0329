from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """DRF's handler, with Django's 404/403 shaped like the rest of the API's errors."""
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data.setdefault("code", getattr(getattr(exc, "default_code", None), "lower", lambda: None)() or "error")
    return response
