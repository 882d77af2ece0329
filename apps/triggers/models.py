"""What starts runs besides people: cron schedules, events, inbound webhooks."""

from __future__ import annotations

import secrets
from datetime import datetime

from django.conf import settings
from django.db import models

from apps.connectors import crypto

from .cron import next_fire_times


class Schedule(models.Model):
    """A cron schedule (five fields, in `timezone`) that starts runs of its workflow.

    Mirrored into a django-celery-beat PeriodicTask + CrontabSchedule (see services.sync_schedule),
    enabled only while both the schedule and its workflow are active.
    """

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=200, blank=True)
    cron = models.CharField(
        max_length=200, help_text="Five fields: minute hour day-of-month month day-of-week, e.g. */15 9-17 * * mon-fri"
    )
    timezone = models.CharField(max_length=64, default="UTC", help_text="An IANA zone name, e.g. Europe/Paris.")
    input = models.JSONField(default=dict, blank=True, help_text="The run input.")
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="workflow_schedule",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_execution = models.ForeignKey(
        "executions.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["workflow_id", "id"]

    def __str__(self) -> str:
        return self.name or f"{self.cron} ({self.timezone})"

    def next_fire_times(self, count: int = 5, *, after: datetime | None = None) -> list[datetime]:
        """The next `count` fire times (aware, in the schedule's timezone)."""
        return next_fire_times(self.cron, self.timezone, count, after=after)

    @property
    def active(self) -> bool:
        return self.enabled and self.workflow.is_active


class EventTrigger(models.Model):
    """Start the workflow when an event of `event_type` arrives and `condition` holds.

    The condition and the input mapping see {"event": {"type", "payload"}}: paths like
    $.event.payload.total. Without a mapping the payload is the input.
    """

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="event_triggers")
    event_type = models.CharField(max_length=200, db_index=True)
    condition = models.JSONField(
        null=True,
        blank=True,
        help_text='Declarative: {"var": "$.event.payload.total", "op": "gt", "value": 100}, or all/any/not.',
    )
    input_mapping = models.JSONField(
        null=True, blank=True, help_text="Object of run-input fields to $.event… references; empty: the payload."
    )
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["workflow_id", "id"]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.workflow_id}"


def new_token() -> str:
    return secrets.token_urlsafe(24)


class WebhookEndpoint(models.Model):
    """POST /api/v1/hooks/<token> with a body signed by the secret starts a run.

    The token is public (it is in the URL); the secret is encrypted at rest (the
    connectors' Fernet keys) and shown once, when created or rotated.
    """

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=200, blank=True)
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    secret_encrypted = models.TextField(editable=False)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["workflow_id", "id"]

    def __str__(self) -> str:
        return self.name or f"webhook {self.token[:6]}…"

    def set_secret(self, plaintext: str) -> None:
        self.secret_encrypted = crypto.encrypt(plaintext)

    def get_secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)

    @property
    def path(self) -> str:
        return f"/api/v1/hooks/{self.token}"
