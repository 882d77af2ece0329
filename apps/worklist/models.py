"""Work items: human tasks an `approval` node offers to users and teams."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.urls import reverse

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
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="claimed_work_items")
    decision = models.CharField(max_length=100, blank=True)
    comment = models.TextField(blank=True)
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    notes = models.TextField(blank=True, help_text="Warnings recorded on offer (unknown users or groups) and by operators.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(name="workitem_open", fields=["state", "due_at"], condition=models.Q(state__in=["offered", "claimed", "started"]))]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_state_display()})"

    def get_absolute_url(self) -> str:
        return reverse("worklist:inbox") + f"#item-{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES
