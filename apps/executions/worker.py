"""Inside each Celery worker: a heartbeat for its running steps, the sweep and the metrics collector.

The heartbeat tells the reaper which running steps still have a live worker: only the
steps the process is executing right now (a registry per process), so a step that an
exception or a lost database left behind stops looking alive. The
sweep also runs from beat; running it in workers too means timers and lost work are
recovered even where beat is not deployed (an advisory lock keeps it to one at a time).
Other apps add periodic jobs to the same loop with `register_background_job` from their
`AppConfig.ready()`: apps.metrics adds its collector, which records finished runs in batches
(apps/metrics/collect.py), so the engine's path pays nothing for metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from celery.signals import worker_process_init, worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections

from .engine import orchestrator

logger = logging.getLogger("workflow.worker")
_stop = threading.Event()
HEARTBEAT_SECONDS = 2.0

# name -> (function, seconds between calls): periodic jobs of higher apps, run by the loop below.
_background_jobs: dict[str, tuple[Callable[[], Any], float]] = {}


def register_background_job(name: str, function: Callable[[], Any], every: float) -> None:
    """Run `function` every `every` seconds in each worker's background thread (from the
    first tick on). An exception is logged and the job runs again at its next time."""
    _background_jobs[name] = (function, float(every))


def _loop(hostname: str) -> None:
    next_sweep = time.monotonic() + 1.0
    next_run = {name: time.monotonic() + 1.0 for name in _background_jobs}
    tick = min(HEARTBEAT_SECONDS, settings.WB_SWEEP_INTERVAL, *(every for _f, every in _background_jobs.values()))
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
        for name, (function, every) in _background_jobs.items():
            if time.monotonic() >= next_run[name]:
                next_run[name] = time.monotonic() + every
                try:
                    function()
                except Exception:  # a job never stops the heartbeat (metrics: the periodic backfill catches up)
                    logger.exception("background job %s failed; retrying", name)


@worker_ready.connect
def start_background(sender=None, **kwargs) -> None:
    hostname = getattr(sender, "hostname", None) or "worker"
    threading.Thread(target=_loop, args=(hostname,), name="wb-heartbeat", daemon=True).start()


def _heartbeat_loop() -> None:
    """A prefork child's own heartbeat: only the process that runs a step knows it runs it."""
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
