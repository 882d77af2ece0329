"""DRF throttles keyed on the client address from `client_ip` (trusted proxies only), never on
an X-Forwarded-For entry the client wrote itself. Settings list these instead of DRF's own."""

from __future__ import annotations

from rest_framework import throttling

from .services import client_ip


class ClientIPMixin:
    def get_ident(self, request) -> str:
        return client_ip(request) or ""


class AnonRateThrottle(ClientIPMixin, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(ClientIPMixin, throttling.UserRateThrottle):
    pass


class ScopedRateThrottle(ClientIPMixin, throttling.ScopedRateThrottle):
    pass


class SimpleRateThrottle(ClientIPMixin, throttling.SimpleRateThrottle):
    pass
