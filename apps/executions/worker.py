"""Inside each Celery worker: a heartbeat for its running steps and the sweep.

The heartbeat tells the reaper which running steps still have a live worker. The
sweep also runs from beat; running it in workers too means timers and lost work are
recovered even where beat is not deployed (an advisory lock keeps it to one at a time).
"""

from __future__ import annotations

import logging
import threading
import time

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger("workflow.worker")
_stop = threading.Event()
HEARTBEAT_SECONDS = 2.0


def _loop(hostname: str) -> None:
    from .engine import orchestrator

    next_sweep = time.monotonic() + 1.0
    while not _stop.wait(HEARTBEAT_SECONDS if settings.WB_SWEEP_INTERVAL >= HEARTBEAT_SECONDS else settings.WB_SWEEP_INTERVAL):
        try:
            close_old_connections()
            orchestrator.heartbeat(hostname)
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + settings.WB_SWEEP_INTERVAL
                counts = orchestrator.sweep()
                if any(counts.values()):
                    logger.info("sweep: %s", counts)
        except Exception:
            logger.exception("heartbeat/sweep failed; retrying")


@worker_ready.connect
def start_background(sender=None, **kwargs) -> None:
    hostname = getattr(sender, "hostname", None) or "worker"
    threading.Thread(target=_loop, args=(hostname,), name="wb-heartbeat", daemon=True).start()


@worker_shutdown.connect
def stop_background(**kwargs) -> None:
    _stop.set()
