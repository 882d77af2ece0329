"""Celery tasks of the work list: thin callers of services and notifications.

Tasks take ids, re-fetch, and return quietly when the data has moved on.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from apps.connectors.models import Delivery
from apps.connectors.services import record_attempt

from . import notifications, services
from .models import WorkItem

logger = logging.getLogger("workflow.worklist")


@shared_task(name="worklist.expire_work_item", ignore_result=True)
def expire_work_item(item_id: int) -> bool:
    """Sent with an ETA of the item's due time when it is offered."""
    return services.expire_work_item(item_id)


@shared_task(name="worklist.claim_timed_out", ignore_result=True)
def claim_timed_out(item_id: int, claimed_at: str) -> bool:
    """Sent with a countdown of the item's claim_timeout when it is claimed."""
    return services.claim_timed_out(item_id, claimed_at)


@shared_task(name="worklist.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    """Periodic (CELERY_BEAT_SCHEDULE): overdue items expire even if their countdown was lost."""
    return services.sweep()


@shared_task(name="worklist.announce", ignore_result=True)
def announce(item_id: int, event: str, actor: str = "") -> None:
    """Notify people in the app (and by email), then post to the configured webhooks."""
    item = WorkItem.objects.select_related("workflow__owner", "claimed_by").filter(pk=item_id).first()
    if item is None:
        return
    try:
        notifications.notify_people(item, event, actor)
    except Exception:  # one bad address must not stop the webhook posts
        logger.exception("could not notify people about work item %s (%s)", item_id, event)
    if event in ("offered", "expired", "reassigned"):
        for channel, url in notifications.channels():
            delivery = notifications.start_delivery(item, channel, url)
            post_notification.delay(item_id, event, str(delivery.pk), actor)


@shared_task(name="worklist.post_notification", bind=True, ignore_result=True, max_retries=None)
def post_notification(self, item_id: int, event: str, delivery_id: str, actor: str = "") -> None:
    """One post to a webhook or Slack; retried with backoff, every attempt recorded on the Delivery."""
    delivery = Delivery.objects.filter(pk=delivery_id).first()
    item = WorkItem.objects.select_related("workflow", "claimed_by").filter(pk=item_id).first()
    if delivery is None or item is None or delivery.finished_at is not None:
        return
    url = settings.WB_WORKLIST_WEBHOOK_URL if delivery.channel == "webhook" else settings.WB_WORKLIST_SLACK_URL
    if not url:
        record_attempt(delivery, ok=False, error="the destination is no longer configured", final=True)
        return
    content, headers = notifications.build_request(item, event, delivery.channel, delivery, actor)
    code, error, retryable = notifications.post(url, content, headers)
    attempts = max(1, int(settings.WB_WORKLIST_NOTIFY_ATTEMPTS))
    if not error:
        record_attempt(delivery, ok=True, response_code=code)
        return
    final = not retryable or delivery.attempts + 1 >= attempts
    record_attempt(delivery, ok=False, response_code=code, error=error, final=final)
    if final:
        logger.warning("work item %s: %s delivery %s failed: %s", item_id, delivery.channel, delivery.pk, error)
        return
    backoff = float(settings.WB_WORKLIST_NOTIFY_BACKOFF) * (2 ** (delivery.attempts - 1))
    raise self.retry(countdown=backoff)
