"""Browser pages of the accounts app. Login and logout are Django's own views (see urls.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from .types import AuthenticatedHttpRequest


@require_GET
@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The landing page for a signed-in user is their workflow list."""
    from apps.workflows.views import workflow_list

    return workflow_list(request)
