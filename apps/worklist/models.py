"""Work items: human tasks an `approval` node offers to users and teams."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.urls import reverse
from django.utils import timezone

from .choices import DEFAULT_OUTCOMES, OPEN_STATES, WorkItemState


def default_outcomes() -> list[str]:
    return list(DEFAULT_OUTCOMES)


class WorkItem(models.Model):
    """One human decision a waiting approval step needs.

    Offered to users and groups (minus those who declined); one person claims it, may
    mark it started, and completes it with one of `outcomes`, which resumes the run.
    """

    execution = models.ForeignKey("executions.Execution", on_delete=models.CASCADE, related_name="work_items")
    step = models.OneToOneField("executions.StepRun", on_delete=models.CASCADE, related_name="work_item")
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="work_items")
    node_id = models.CharField(max_length=64, blank=True)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True, help_text="Rendered from run data when offered.")
    offered_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="offered_work_items")
    offered_groups = models.ManyToManyField(Group, blank=True, related_name="offered_work_items")
    declined_by = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="declined_work_items")
    outcomes = models.JSONField(default=default_outcomes)
    state = models.CharField(max_length=16, choices=WorkItemState.choices, default=WorkItemState.OFFERED, db_index=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="claimed_work_items"
    )
    decision = models.CharField(max_length=100, blank=True)
    comment = models.TextField(blank=True)
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    notes = models.TextField(
        blank=True, help_text="Warnings recorded on offer (unknown users or groups) and by operators."
    )
    allocation = models.JSONField(
        default=dict,
        blank=True,
        help_text="How the item was distributed: {strategy, filters, reasons: {username: why}, log: [{at, event, "
        "to, reason}]}.",
    )
    claim_timeout = models.FloatField(
        null=True, blank=True, help_text="Seconds a person may hold the item undecided before it is re-offered."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                name="workitem_open",
                fields=["state", "due_at"],
                condition=models.Q(state__in=["offered", "claimed", "started"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_state_display()})"

    def get_absolute_url(self) -> str:
        return reverse("worklist:inbox") + f"#item-{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class WorkerProfile(models.Model):
    """What work distribution knows about a person: capabilities (tags), availability, workload limit.

    People without a profile are available, have no capabilities and no personal limit.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="worker_profile")
    capabilities = models.JSONField(
        default=list, blank=True, help_text="Tags such as finance, german, senior (lower case)."
    )
    available = models.BooleanField(default=True, help_text="Unavailable people are not offered new work items.")
    away_until = models.DateTimeField(
        null=True, blank=True, help_text="Unavailable until then (e.g. a holiday), then available again."
    )
    max_open_items = models.PositiveIntegerField(
        null=True, blank=True, help_text="Offer nothing new while this many items are open for the person."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "worker profile"

    def __str__(self) -> str:
        return f"Work profile of {self.user}"

    def is_available(self, now=None) -> bool:
        now = now or timezone.now()
        return self.available and not (self.away_until and self.away_until > now)


class AllocationCursor(models.Model):
    """Where round robin stands for one approval node of one workflow (its row lock orders concurrent offers)."""

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    node_id = models.CharField(max_length=64)
    last_username = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "node_id"], name="allocation_cursor_one_per_node")]

    def __str__(self) -> str:
        return f"{self.workflow_id}/{self.node_id}: after {self.last_username or 'nobody'}"
