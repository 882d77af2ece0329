"""The live execution page's websocket: one consumer per open page, permission-checked on connect.

The engine publishes `execution.events` to the run's group after each commit (only while someone
watches: see engine/publish.py). The consumer answers each message with the page's out-of-band HTML
fragments for everything past the last event it sent, so lost or duplicated messages do no harm.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from .engine import publish

logger = logging.getLogger("workflow.live")

CLOSE_FORBIDDEN = 4403


class ExecutionConsumer(AsyncWebsocketConsumer):
    execution_id: int
    last_seq: int
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        kwargs = self.scope["url_route"]["kwargs"]
        self.execution_id = int(kwargs["pk"])
        try:
            self.last_seq = max(0, int(_query(self.scope).get("after", "0")))
        except ValueError:
            self.last_seq = 0
        allowed = await self._allowed(user)
        if not allowed:
            # Accept then close with an application code, so the browser sees why (4403 = forbidden).
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = publish.group_name(self.execution_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await database_sync_to_async(publish.watch)(self.execution_id, +1)
        await self.accept()
        # Catch up with whatever committed between the page render and this connect.
        await self.send_update()

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await database_sync_to_async(publish.watch)(self.execution_id, -1)
            self.group = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Pages send nothing we act on (htmx's ws-send is not used here)."""

    async def execution_events(self, message: dict) -> None:
        if int(message.get("last_seq") or 0) <= self.last_seq:
            return
        await self.send_update()

    async def send_update(self) -> None:
        html, last_seq = await self._render(self.last_seq)
        if html is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if last_seq > self.last_seq:
            self.last_seq = last_seq
            await self.send(text_data=html)

    @database_sync_to_async
    def _allowed(self, user) -> bool:
        from .access import access_execution

        if user is None or not user.is_authenticated:
            return False
        try:
            access_execution(user, self.execution_id)
        except (Http404, PermissionDenied):
            return False
        return True

    @database_sync_to_async
    def _render(self, after: int) -> tuple[str | None, int]:
        from .access import access_execution
        from .views import render_live_fragments

        try:
            # Re-checked on every update: a revoked share stops the stream.
            execution = access_execution(self.scope["user"], self.execution_id)
        except (Http404, PermissionDenied):
            return None, after
        if execution.last_seq <= after:
            return "", after
        return render_live_fragments(execution, self.scope["user"], after=after)


def _query(scope: dict) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
