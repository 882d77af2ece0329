"""Execution retention: finished runs older than WB_EXECUTION_RETENTION_DAYS are deleted (with their
steps, events and timers), except pinned ones. Runs hourly from beat (settings.CELERY_BEAT_SCHEDULE).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .choices import FINISHED_EXECUTION
from .models import Execution

logger = logging.getLogger("workflow.retention")

BATCH = 500


def expired_executions(now=None):
    """Finished, unpinned runs that finished (or, if never started, were created) before the cutoff."""
    days = int(getattr(settings, "WB_EXECUTION_RETENTION_DAYS", 30))
    cutoff = (now or timezone.now()) - timedelta(days=days)
    return Execution.objects.filter(status__in=FINISHED_EXECUTION, pinned=False, created_at__lt=cutoff).exclude(
        finished_at__gte=cutoff
    )


def purge_old_executions(*, now=None, batch: int = BATCH) -> int:
    """Delete expired runs in batches (short transactions); returns how many runs were deleted.

    A run that is a parent of a kept run is kept too (children cascade from their parent).
    """
    total = 0
    while True:
        ids = list(
            expired_executions(now).exclude(children__pinned=True).order_by("pk").values_list("pk", flat=True)[:batch]
        )
        if not ids:
            break
        with transaction.atomic():
            # Runs that continued or retried these keep existing; only the links are cleared (SET_NULL).
            deleted, _by_model = Execution.objects.filter(pk__in=ids).delete()
        total += len(ids)
        if len(ids) < batch:
            break
    if total:
        logger.info("purged %s executions older than %s days", total, settings.WB_EXECUTION_RETENTION_DAYS)
    return total


@shared_task(name="apps.executions.retention.purge_old_executions", ignore_result=True)
def purge_old_executions_task() -> int:
    return purge_old_executions()
