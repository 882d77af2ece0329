"""Names for annotations: who a user may be, and the requests of views that need a signed-in one.

mypy's Django stubs type `request.user` as `User | AnonymousUser`. A view behind `login_required`
only ever runs for an account, and says so by annotating its request as AuthenticatedHttpRequest
(nothing instantiates it); a DRF view behind IsAuthenticated asks account_of(request).
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

# Any `request.user`: an account, or AnonymousUser before sign-in. Helpers that take one check
# `user.is_authenticated`, which narrows it to User.
AnyUser = User | AnonymousUser


class HtmxHttpRequest(HttpRequest):
    """A request through django-htmx's HtmxMiddleware (settings.MIDDLEWARE): it sets `htmx`."""

    htmx: HtmxDetails


class AuthenticatedHttpRequest(HtmxHttpRequest):
    """The request of a view behind `login_required`."""

    user: User


def account_of(request: Request) -> User:
    """`request.user` of a DRF view that requires authentication (IsAuthenticated, the default),
    typed as the account it is there. DRF's @api_view accepts only functions of a plain Request,
    so those views cannot say it with their annotation. NotAuthenticated (401) if there is none."""
    user = request.user
    if not user.is_authenticated:
        raise NotAuthenticated()
    return user
