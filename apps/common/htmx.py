"""The one place views decide between a whole page and an htmx fragment.

The same view serves both: a full page extends `base.html`, a fragment for an htmx swap extends
`_partial.html` (boosted navigations are whole pages). django-htmx's middleware sets `request.htmx`.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django_htmx.http import HttpResponseClientRedirect


def is_htmx_partial(request: HttpRequest) -> bool:
    """An htmx request that wants a fragment (boosted navigations get whole pages)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx and not htmx.boosted)


def base_template(request: HttpRequest) -> str:
    return "_partial.html" if is_htmx_partial(request) else "base.html"


def client_redirect(request: HttpRequest, url: str) -> HttpResponse:
    """Go to `url`: htmx follows an HX-Redirect header (a 302 would be swapped into the fragment)."""
    return HttpResponseClientRedirect(url) if is_htmx_partial(request) else redirect(url)
