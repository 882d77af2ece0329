"""Periodic housekeeping of metrics (registered in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import logging

from celery import shared_task

from . import aggregation, collect

logger = logging.getLogger("workflow.metrics")


@shared_task(name="apps.metrics.tasks.rollup_and_prune", ignore_result=True)
def rollup_and_prune() -> dict[str, int]:
    """Record runs the engine hook missed, roll recent hours up, prune what is past its keep.

    Safe to run twice at once: every step is idempotent.
    """
    counts = {"backfilled": collect.backfill(), "rolled_up": aggregation.roll_up_recent()}
    counts.update({f"pruned_{k}": v for k, v in aggregation.prune().items()})
    logger.info("metrics housekeeping: %s", counts)
    return counts
