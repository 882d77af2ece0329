"""The REST API answers with or without a trailing slash.

Some endpoints are spelled with one (/api/v1/workflows/), some without (/api/v1/workflows/1/runs),
and integrations guess. Without this, a POST to the other spelling met Django's APPEND_SLASH: a
RuntimeError (500) under DEBUG, a redirect that drops the body in production, or a 404. Here a path
under /api/ that resolves only in its other spelling is routed to that one before CommonMiddleware
looks at it, so every endpoint takes both (URLs the API hands out keep their canonical form).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import is_valid_path

API_PREFIX = "/api/"


class ApiOptionalSlashMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith(API_PREFIX) and len(path) > len(API_PREFIX):
            urlconf = getattr(request, "urlconf", None)
            if not is_valid_path(path, urlconf):
                other = path[:-1] if path.endswith("/") else path + "/"
                if is_valid_path(other, urlconf):
                    request.path = request.path[: len(request.path) - len(path)] + other
                    request.path_info = other
        return self.get_response(request)
