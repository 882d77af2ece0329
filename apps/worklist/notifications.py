"""Telling people about work items: in-app notifications (with their emails, through
Django's email backend) and posts to a webhook and a Slack-compatible webhook.

Posts are made by a Celery task, retried with backoff, and recorded as connectors'
Delivery rows; a failure never touches the run. The webhook body is signed like the
notify.webhook activity's: X-Workflow-Signature: sha256=<hex HMAC-SHA256 of
"<X-Workflow-Timestamp>." + body>, keyed by WB_WORKLIST_WEBHOOK_SECRET.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.urls import reverse

from apps.comments.services import notify
from apps.connectors import outbound
from apps.connectors.activities.notify import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from apps.connectors.choices import DeliveryChannel
from apps.connectors.models import Delivery

from .models import WorkItem
from .services import eligible_users

logger = logging.getLogger("workflow.worklist")

EVENT_TEXT = {
    "offered": "Approval waiting: “{title}” ({workflow})",
    "expired": "Approval expired: “{title}” ({workflow}); nobody decided in time",
    "declined": "“{title}” ({workflow}) was declined by {actor}; it is still waiting for a decision",
    "reassigned": "“{title}” ({workflow}) was assigned to you by {actor}",
}
MAX_RESPONSE = 64 * 1024


def inbox_url() -> str:
    return reverse("worklist:inbox")


def payload_for(item: WorkItem, event: str, actor: str = "") -> dict[str, Any]:
    """The JSON body posted to the webhook."""
    return {
        "event": f"work_item.{event}",
        "actor": actor,
        "work_item": {
            "id": item.pk,
            "title": item.title,
            "description": item.description,
            "state": item.state,
            "outcomes": item.outcomes,
            "decision": item.decision,
            "due_at": item.due_at.isoformat() if item.due_at else None,
            "workflow": {"id": item.workflow_id, "name": item.workflow.name},
            "execution": item.execution_id,
            "node": item.node_id,
            "offered_users": sorted(u.get_username() for u in item.offered_users.all()),
            "offered_groups": sorted(g.name for g in item.offered_groups.all()),
            "claimed_by": item.claimed_by.get_username() if item.claimed_by else None,
            "url": settings.WB_SITE_URL.rstrip("/") + inbox_url(),
        },
    }


def text_for(item: WorkItem, event: str, actor: str = "") -> str:
    return EVENT_TEXT[event].format(title=item.title, workflow=item.workflow.name, actor=actor or "someone")


def recipients_for(item: WorkItem, event: str) -> list:
    """Who gets an in-app notification (and its email) for `event`."""
    if event == "reassigned":
        return [item.claimed_by] if item.claimed_by else []
    if event == "declined":
        if item.claimed_by_id is not None:
            return []  # someone else holds it: nothing changes for the others
        return list(eligible_users(item)) or [item.workflow.owner]
    people = {u.pk: u for u in eligible_users(item)}
    if item.claimed_by is not None:
        people[item.claimed_by.pk] = item.claimed_by
    return list(people.values())


def notify_people(item: WorkItem, event: str, actor: str = "") -> int:
    """In-app notifications (kind "approval"); comments.notify emails those who want it."""

    text = text_for(item, event, actor)
    nobody_left = event == "declined" and not eligible_users(item).exists()
    if nobody_left:
        text = (
            f"Nobody is left to decide “{item.title}” ({item.workflow.name}): every eligible person declined. "
            "Reassign it."
        )
    sent = 0
    for user in recipients_for(item, event):
        if user.get_username() == actor and not nobody_left:
            continue
        if notify(user, "approval", text, inbox_url()):
            sent += 1
    return sent


def channels() -> list[tuple[str, str]]:
    """(channel, url) pairs configured for work-item posts."""
    out: list[tuple[str, str]] = []
    if settings.WB_WORKLIST_WEBHOOK_URL:
        out.append((DeliveryChannel.WEBHOOK, settings.WB_WORKLIST_WEBHOOK_URL))
    if settings.WB_WORKLIST_SLACK_URL:
        out.append((DeliveryChannel.SLACK, settings.WB_WORKLIST_SLACK_URL))
    return out


def start_delivery(item: WorkItem, channel: str, url: str) -> Delivery:
    target = outbound.display_url(url).split("?")[0] if channel == DeliveryChannel.WEBHOOK else _masked(url)
    return Delivery.objects.create(
        channel=channel, target=target[:500], execution_id=item.execution_id, step_id=item.step_id, node_id=item.node_id
    )


def _masked(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}/…"


def build_request(
    item: WorkItem, event: str, channel: str, delivery: Delivery, actor: str = ""
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one post."""
    if channel == DeliveryChannel.SLACK:
        body = {
            "text": text_for(item, event, actor) + f" <{settings.WB_SITE_URL.rstrip('/')}{inbox_url()}|Open the inbox>"
        }
        return json.dumps(body, separators=(",", ":")).encode(), {"Content-Type": "application/json"}
    content = json.dumps(payload_for(item, event, actor), separators=(",", ":"), default=str).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "WorkflowBuilder/1.0",
        "X-Workflow-Event": f"work_item.{event}",
        DELIVERY_HEADER: str(delivery.pk),
    }
    if settings.WB_WORKLIST_WEBHOOK_SECRET:
        timestamp = int(time.time())
        headers[TIMESTAMP_HEADER] = str(timestamp)
        headers[SIGNATURE_HEADER] = sign(settings.WB_WORKLIST_WEBHOOK_SECRET, content, timestamp)
    return content, headers


def post(url: str, content: bytes, headers: dict[str, str]) -> tuple[int | None, str, bool]:
    """One attempt through the outbound guard; returns (status, error, retryable)."""
    try:
        with httpx.Client(
            timeout=float(settings.WB_WORKLIST_NOTIFY_TIMEOUT), follow_redirects=False, trust_env=False
        ) as client:
            response = outbound.send(
                client, "POST", url, headers=headers, content=content, follow_redirects=False, max_bytes=MAX_RESPONSE
            )
    except outbound.ResponseTooLarge:
        return None, "the response was too large", False
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}", True
    except Exception as exc:  # a refused destination (ActivityError) or a bad URL: retrying cannot help
        return None, getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}", False
    if 200 <= response.status < 300:
        return response.status, "", False
    return (
        response.status,
        f"answered {response.status}: {response.content[:500].decode('utf-8', errors='replace')}",
        response.status >= 500 or response.status in (408, 429),
    )
