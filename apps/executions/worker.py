"""Inside each Celery worker: a heartbeat for its running steps, the sweep and the metrics collector.

The heartbeat tells the reaper which running steps still have a live worker: only the
steps the process is executing right now (a registry per process), so a step that an
exception or a lost database left behind stops looking alive. The
sweep also runs from beat; running it in workers too means timers and lost work are
recovered even where beat is not deployed (an advisory lock keeps it to one at a time).
The metrics collector records finished runs in batches (apps/metrics/collect.py), so the
engine's path pays nothing for metrics.
"""

from __future__ import annotations

import logging
import threading
import time

from celery.signals import worker_process_init, worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger("workflow.worker")
_stop = threading.Event()
HEARTBEAT_SECONDS = 2.0


def _loop(hostname: str) -> None:
    from .engine import orchestrator

    from apps.metrics import collect

    next_sweep = next_collect = time.monotonic() + 1.0
    tick = min(HEARTBEAT_SECONDS, settings.WB_SWEEP_INTERVAL, settings.WB_METRICS_INTERVAL)
    while not _stop.wait(tick):
        try:
            close_old_connections()
            orchestrator.heartbeat()  # the steps this process runs (threads pool); children beat their own
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + settings.WB_SWEEP_INTERVAL
                counts = orchestrator.sweep()
                if any(counts.values()):
                    logger.info("sweep: %s", counts)
        except Exception:
            logger.exception("heartbeat/sweep failed; retrying")
        if time.monotonic() >= next_collect:
            next_collect = time.monotonic() + settings.WB_METRICS_INTERVAL
            try:
                collect.collect_recent()
            except Exception:  # metrics never stop the heartbeat; the periodic backfill catches up
                logger.exception("metrics collection failed; retrying")


@worker_ready.connect
def start_background(sender=None, **kwargs) -> None:
    hostname = getattr(sender, "hostname", None) or "worker"
    threading.Thread(target=_loop, args=(hostname,), name="wb-heartbeat", daemon=True).start()


def _heartbeat_loop() -> None:
    """A prefork child's own heartbeat: only the process that runs a step knows it runs it."""
    from .engine import orchestrator

    while not _stop.wait(HEARTBEAT_SECONDS):
        try:
            close_old_connections()
            orchestrator.heartbeat()
        except Exception:
            logger.exception("heartbeat failed; retrying")


@worker_process_init.connect
def start_child_heartbeat(**kwargs) -> None:
    threading.Thread(target=_heartbeat_loop, name="wb-heartbeat-child", daemon=True).start()


@worker_shutdown.connect
def stop_background(**kwargs) -> None:
    _stop.set()
