"""Live updates: after an event commits, tell the execution's Channels group.

Publishing is skipped when nobody watches the run (pages register themselves in a
Redis set while their websocket is open), so the engine pays for live updates only
when someone looks.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from django.conf import settings
from django.db import transaction

logger = logging.getLogger("workflow.engine")
def _namespace() -> str:
    """The database's name: stacks (or parallel test sessions) sharing one Redis keep apart."""
    import re

    from django.db import connection

    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(connection.settings_dict.get("NAME") or "default"))[:60]


def group_name(execution_id: int) -> str:
    return f"execution-{_namespace()}-{execution_id}"


def _watch_key(execution_id: int) -> str:
    return f"wb:watching:{_namespace()}:{execution_id}"


@lru_cache(maxsize=1)
def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def watchers(execution_id: int) -> int:
    try:
        return int(_redis().get(_watch_key(execution_id)) or 0)
    except Exception:
        return 0


def watch(execution_id: int, delta: int) -> None:
    key = _watch_key(execution_id)
    try:
        client = _redis()
        value = client.incrby(key, delta)
        if value <= 0:
            client.delete(key)
        else:
            client.expire(key, 3600)
    except Exception:
        logger.warning("could not register a watcher of execution %s", execution_id)


def events_committed(execution_id: int, events) -> None:
    if not events or not watchers(execution_id):
        return
    try:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        async_to_sync(layer.group_send)(
            group_name(execution_id),
            {"type": "execution.events", "execution_id": execution_id, "event_ids": [e.pk for e in events], "last_seq": max(e.seq for e in events)},
        )
    except Exception:  # live updates are best effort; pages fall back to polling
        logger.warning("could not publish events of execution %s", execution_id, exc_info=True)


def on_commit(execution_id: int, events) -> None:
    transaction.on_commit(lambda: events_committed(execution_id, events))
