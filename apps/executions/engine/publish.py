"""Live updates: after an event commits, tell the execution's Channels group.

Publishing is skipped when nobody watches the run, so the engine pays for live updates
only when someone looks. A page's websocket consumer registers its channel in a Redis
sorted set per run, scored by when the registration lapses, and renews it while the
socket is open: a consumer that died without saying goodbye (or a registration lost
with Redis) stops counting after WATCH_TTL, and a page still watching is counted again
at its next renewal. A counter could do neither: it drifted up for every consumer that
died and, once its key expired or was lost, read 0 under pages that were still open.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time

from channels.layers import get_channel_layer
from django.db import transaction

from apps.common.redis_store import client as _redis
from apps.common.redis_store import stack as _namespace

logger = logging.getLogger("workflow.engine")


def group_name(execution_id: int) -> str:
    return f"execution-{_namespace()}-{execution_id}"


def _watch_key(execution_id: int) -> str:
    # Not "wb:watching:…", the counters this set replaced: a stack upgraded in place keeps apart.
    return f"wb:watchers:{_namespace()}:{execution_id}"


# Seconds a registration lasts without renewal; consumers renew well within it.
WATCH_TTL = 60


def watchers(execution_id: int) -> int:
    """How many pages watch the run (registrations not lapsed); 0 when Redis does not answer."""
    try:
        return int(_redis().zcount(_watch_key(execution_id), time.time(), "+inf"))
    except Exception:
        return 0


def watch(execution_id: int, channel_name: str, ttl: float = WATCH_TTL) -> None:
    """Register (or renew) `channel_name` as watching the run for `ttl` seconds; drop lapsed ones."""
    key = _watch_key(execution_id)
    now = time.time()
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.zadd(key, {channel_name: now + ttl})
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.expire(key, int(max(ttl, WATCH_TTL)) + 1)
        pipe.execute()
    except Exception:
        logger.warning("could not register a watcher of execution %s", execution_id)


def unwatch(execution_id: int, channel_name: str) -> None:
    try:
        _redis().zrem(_watch_key(execution_id), channel_name)
    except Exception:
        logger.warning("could not unregister a watcher of execution %s", execution_id)


# Seconds a publish may take before it is given up (the page's next renewal or poll makes up for it).
PUBLISH_TIMEOUT = 2.0

_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop for publishing, running in a daemon thread of its own.

    The channel layer keeps its Redis connections per event loop: `async_to_sync` made a new loop
    for every publish, and so a new connection (9-16 ms a publish on a busy machine, most of the way
    from a commit to the page). One loop per process keeps one. A forked process (a prefork worker
    child) makes its own: the parent's thread did not come along."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-publisher", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def events_committed(execution_id: int, events) -> None:
    if not events or not watchers(execution_id):
        return
    try:
        layer = get_channel_layer()
        if layer is None:  # no CHANNEL_LAYERS configured: nobody can be watching
            return
        message = {
            "type": "execution.events",
            "execution_id": execution_id,
            "event_ids": [e.pk for e in events],
            "last_seq": max(e.seq for e in events),
        }
        sent = asyncio.run_coroutine_threadsafe(layer.group_send(group_name(execution_id), message), _publisher_loop())
        try:
            sent.result(timeout=PUBLISH_TIMEOUT)
        except concurrent.futures.TimeoutError:
            sent.cancel()
            raise
    except Exception:  # live updates are best effort; pages fall back to polling
        logger.warning("could not publish events of execution %s", execution_id, exc_info=True)


def on_commit(execution_id: int, events) -> None:
    transaction.on_commit(lambda: events_committed(execution_id, events))
