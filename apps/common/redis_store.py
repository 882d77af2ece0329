"""The one way our code reaches Redis directly, and the one scheme for the keys it writes.

Keys are ``wb:<area>:<stack>:<name>``:

- ``area`` is what owns the key: ``watchers`` (the engine's live-update registrations),
  ``circuit`` (the connectors' breakers), ``beat`` (accounts' beat heartbeat), ``metrics``
  (the Prometheus counters).
- ``stack`` is the database's name: processes on one database are one system and share the
  keys; stacks (or parallel test sessions) sharing one Redis keep apart.
- ``name`` is free-form within the area (it may contain colons).

Celery's broker and result keys, Channels' groups and Django's cache are named by those libraries
and are not ours to name. A client is made once per process per URL and timeout (a new one per
call would cost a connect each time).
"""

from __future__ import annotations

import re
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connection


def stack() -> str:
    """The database's name as a key part (read per call: a test session switches to its test database)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(connection.settings_dict.get("NAME") or "default"))[:60]


def key(area: str, name: object) -> str:
    """``wb:<area>:<stack>:<name>``."""
    return f"wb:{area}:{stack()}:{name}"


@lru_cache(maxsize=8)
def _client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


def client(url: str | None = None, *, timeout: float = 1.0) -> redis.Redis:
    """A redis-py client on `url` (default settings.REDIS_URL) with short timeouts: callers treat
    Redis as best effort and must not hang a request or a step on it."""
    return _client(url or settings.REDIS_URL, timeout)
