"""Periodic housekeeping of the accounts app (registered in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import time

from celery import shared_task

from apps.common.redis_store import client, key

# The key lives as long as two missed beats and a margin: absent means beat (or every worker) is gone.
BEAT_HEARTBEAT_TTL = 60


def beat_heartbeat_key() -> str:
    """The Redis key beat's heartbeat is stored under.

    Namespaced by the stack (apps.common.redis_store), so stacks sharing one Redis (say
    `make run` and a test session) do not vouch for each other's beat.
    """
    return key("beat", "heartbeat")


@shared_task(name="apps.accounts.tasks.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> float:
    """Record that beat scheduled a task and a worker ran it; return the timestamp stored.

    /readyz reads the key (see apps.accounts.health).
    """
    now = time.time()
    client().set(beat_heartbeat_key(), f"{now:.3f}", ex=BEAT_HEARTBEAT_TTL)
    return now
