from __future__ import annotations

import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(name="apps.versions.tasks.prune_versions")
def prune_versions() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE["prune-workflow-versions"]): keep the last WB_VERSIONS_KEEP versions."""
    deleted = services.prune_versions()
    if deleted:
        logger.info("pruned %d old workflow version(s)", deleted)
    return deleted
