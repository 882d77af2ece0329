"""The ASGI app of `benchmarks/live_updates.py`'s baseline: the site as it is, except that every
websocket update of the live page is the whole panel (status panel, error overlay, graph, steps
table and the new timeline rows), as every update was before the page was sent only what changed
(issue 16). The same whole panel still goes out after a (re)connect and to a page out of sync."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflowsite.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from apps.executions.consumers import ExecutionConsumer  # noqa: E402


class WholePanelConsumer(ExecutionConsumer):
    async def send_update(self, *, full: bool = False) -> None:
        await super().send_update(full=True)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter([path("ws/executions/<int:pk>/", WholePanelConsumer.as_asgi())]))),
    }
)
