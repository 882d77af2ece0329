"""Periodic housekeeping of the accounts app (registered in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import time

from celery import shared_task
from django.conf import settings

# The key lives as long as two missed beats and a margin: absent means beat (or every worker) is gone.
BEAT_HEARTBEAT_TTL = 60


def beat_heartbeat_key() -> str:
    """The Redis key beat's heartbeat is stored under.

    Namespaced by the task queue, so stacks sharing one Redis (say `make run` and a
    test session on their own queues) do not vouch for each other's beat.
    """
    return f"wb:beat-heartbeat:{settings.CELERY_TASK_DEFAULT_QUEUE}"


def redis_client():
    """A redis-py client on settings.REDIS_URL with short timeouts (for probes and heartbeats)."""
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


@shared_task(name="apps.accounts.tasks.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> float:
    """Record that beat scheduled a task and a worker ran it; return the timestamp stored.

    /readyz reads the key (see apps.accounts.health).
    """
    now = time.time()
    redis_client().set(beat_heartbeat_key(), f"{now:.3f}", ex=BEAT_HEARTBEAT_TTL)
    return now
