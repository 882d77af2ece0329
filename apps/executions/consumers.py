"""The live execution page's websocket: one consumer per open page, permission-checked on connect.

The engine publishes `execution.events` to the run's group after each commit (only while someone
watches: see engine/publish.py). The consumer answers each message with out-of-band HTML fragments
of what changed past the last event it sent (views.render_live_fragments: the touched steps' rows
and graph nodes, the counts, the status badge, new timeline rows; the whole panel when the run's own
status changed), so duplicated messages do no harm; a lost one is made up for at the next renewal
(every `renew_every` seconds the consumer renews its watcher registration and group membership, and
sends whatever it has not sent yet). Its first update after a (re)connect is the whole panel: the
page may have missed anything while it was not connected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from .access import access_execution
from .engine import publish
from .views import render_live_fragments

logger = logging.getLogger("workflow.live")

CLOSE_FORBIDDEN = 4403


class ExecutionConsumer(AsyncWebsocketConsumer):
    execution_id: int
    last_seq: int
    group: str | None = None
    closing: bool = False
    # Well within publish.WATCH_TTL, so a registration never lapses while the page is open.
    renew_every: float = publish.WATCH_TTL / 3

    async def __call__(self, scope, receive, send) -> None:
        self._sending = asyncio.Lock()
        self._renewing: asyncio.Task | None = None
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when the consumer dies of an exception (no websocket.disconnect then): a page
            # that is gone must not be counted as watching, nor stay in the group.
            await self._leave()

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
        await database_sync_to_async(publish.watch)(self.execution_id, self.channel_name)
        await self.accept()
        # Catch up with whatever committed between the page render (or the last message a
        # reconnecting page applied) and this connect: the whole panel, once.
        await self.send_update(full=True)
        if not self.closing:
            self._renewing = asyncio.ensure_future(self._renew())

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            self._renewing = None
        if self.group is None:
            return
        group, self.group = self.group, None
        try:
            await self.channel_layer.group_discard(group, self.channel_name)
        except Exception:  # the group forgets us after group_expiry anyway
            logger.warning("could not leave %s", group, exc_info=True)
        await database_sync_to_async(publish.unwatch)(self.execution_id, self.channel_name)

    async def _renew(self) -> None:
        while not self.closing:
            await asyncio.sleep(self.renew_every)
            if self.group is None:  # left meanwhile
                return
            try:
                await self.channel_layer.group_add(self.group, self.channel_name)
                await database_sync_to_async(publish.watch)(self.execution_id, self.channel_name)
                await self.send_update()
            except Exception:  # try again at the next renewal; the page polls meanwhile
                logger.warning("could not renew the live view of execution %s", self.execution_id, exc_info=True)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Pages send nothing we act on (htmx's ws-send is not used here)."""

    async def execution_events(self, message: dict) -> None:
        if int(message.get("last_seq") or 0) <= self.last_seq:
            return
        await self.send_update()

    async def send_update(self, *, full: bool = False) -> None:
        """Send the fragments past `last_seq`, in order, until the page has all the run has
        (`full`: the whole panel, not just what changed)."""
        async with self._sending:  # the renewal and the messages take turns: never an older state last
            while not self.closing:
                html, last_seq, more = await self._render(self.last_seq, full)
                if html is None:
                    self.closing = True
                    await self.close(code=CLOSE_FORBIDDEN)
                    return
                if last_seq <= self.last_seq:
                    return
                self.last_seq = last_seq
                await self.send(text_data=html)
                if not more:
                    return

    @database_sync_to_async
    def _allowed(self, user) -> bool:
        if user is None or not user.is_authenticated:
            return False
        try:
            access_execution(user, self.execution_id)
        except (Http404, PermissionDenied):
            return False
        return True

    @database_sync_to_async
    def _render(self, after: int, full: bool = False) -> tuple[str | None, int, bool]:
        """The fragments past `after` (None: no longer allowed), the last seq they include, and
        whether the run has more (a long backlog is sent in pieces)."""
        try:
            # Re-checked on every update: a revoked share stops the stream.
            execution = access_execution(self.scope["user"], self.execution_id)
        except (Http404, PermissionDenied):
            return None, after, False
        if execution.last_seq <= after:
            return "", after, False
        html, last_seq = render_live_fragments(execution, self.scope["user"], after=after, full=full)
        return html, last_seq, last_seq < execution.last_seq


def _query(scope: Mapping[str, Any]) -> dict[str, str]:
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
