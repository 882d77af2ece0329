"""Executions, step runs, the append-only event history and durable timers.

Postgres is the source of truth: a worker's memory holds nothing a restart could lose.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from .choices import FINISHED_EXECUTION, ExecutionStatus, StepStatus, Trigger


class Execution(models.Model):
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="executions")
    # The definition this run started with: later edits of the workflow do not change a run.
    definition = models.JSONField()
    status = models.CharField(
        max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING, db_index=True
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    input = models.JSONField(default=dict, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True, help_text="{type, message, node} when the run failed.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    parent_step = models.ForeignKey(
        "StepRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="child_executions"
    )
    continued_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="continued_as"
    )
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_seq = models.PositiveBigIntegerField(default=0)
    pinned = models.BooleanField(default=False, help_text="Pinned runs are kept past the retention period.")
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    # Signals that arrived before a signal_wait asked for them (oldest first).
    pending_signals = models.JSONField(default=list, blank=True)
    workflow_version = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The version of the workflow this run runs (numbered as in its history); set for child runs.",
    )
    queue = models.CharField(
        max_length=100, blank=True, help_text="The Celery queue this run's steps go to (empty: the default queue)."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["workflow", "-created_at"]),
            models.Index(fields=["status", "-created_at"]),
            # The metrics collector's scan of recently finished runs.
            models.Index(
                name="execution_finished", fields=["finished_at"], condition=models.Q(finished_at__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"Execution {self.pk} of {self.workflow_id} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("executions:detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_EXECUTION

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None


class StepRun(models.Model):
    """One activation of a node: one row per attempt."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="steps")
    node_id = models.CharField(max_length=64)
    node_type = models.CharField(max_length=32)
    activity = models.CharField(max_length=100, blank=True)
    # Where in the run this activation lives: "" for the top level, "loop[3]/" for
    # iteration 3 of node `loop`, "par[1]/" for branch 1 of node `par`, nested as needed.
    scope = models.CharField(max_length=500, blank=True, default="")
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING, db_index=True)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    state = models.JSONField(default=dict, blank=True, help_text="Bookkeeping of loop and parallel nodes.")
    logs = models.JSONField(default=list, blank=True)
    # Advanced: the orchestrator has taken this finished step into account.
    advanced = models.BooleanField(default=True)
    # In a chord: finishing does not advance the run; the chord callback does.
    in_chord = models.BooleanField(default=False)
    task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["execution", "scope", "node_id"]),
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(name="steprun_inbox", fields=["execution"], condition=models.Q(advanced=False)),
        ]

    def __str__(self) -> str:
        return f"{self.scope}{self.node_id} #{self.attempt} ({self.status})"

    @property
    def key(self) -> str:
        return f"{self.scope}{self.node_id}"

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None

    @property
    def queue_wait_ms(self) -> int | None:
        if self.dispatched_at and self.started_at:
            return max(0, int((self.started_at - self.dispatched_at).total_seconds() * 1000))
        return None


class ExecutionEvent(models.Model):
    """The append-only history of a run; replay, timeline and metrics read it."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=40, db_index=True)
    node_id = models.CharField(max_length=64, blank=True)
    scope = models.CharField(max_length=500, blank=True, default="")
    step = models.ForeignKey(StepRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    payload = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=150, blank=True, help_text="Who caused it, for signals, cancels and approvals.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["execution", "seq"]
        constraints = [models.UniqueConstraint(fields=["execution", "seq"], name="event_seq_unique")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.type} {self.node_id}".strip()


class Timer(models.Model):
    """A durable timer: fired by a Celery countdown, or by the sweep if that message is lost."""

    class Kind(models.TextChoices):
        TIMER = "timer", "Timer node"
        RETRY = "retry", "Retry backoff"
        TIMEOUT = "timeout", "Step timeout"
        SIGNAL_TIMEOUT = "signal_timeout", "Signal wait timeout"

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="timers")
    step = models.ForeignKey(StepRun, null=True, blank=True, on_delete=models.CASCADE, related_name="timers")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    fire_at = models.DateTimeField()
    fired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(name="timer_due", fields=["fire_at"], condition=models.Q(fired_at__isnull=True))]

    def __str__(self) -> str:
        return f"{self.kind} at {self.fire_at:%H:%M:%S} for execution {self.execution_id}"


class DynamicItem(models.Model):
    """One item of a dynamic node's run: its status, result and timings, and how many of its
    dependencies are still open. A completion writes this row (and decrements its dependents'
    counters), never the whole node's bookkeeping."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        BLOCKED = "blocked", "Blocked"
        CANCELLED = "cancelled", "Cancelled"

    step = models.ForeignKey(
        StepRun, on_delete=models.CASCADE, related_name="dynamic_items", help_text="The dynamic node's step run."
    )
    index = models.PositiveIntegerField(help_text="Position in the node's item list (its scope is node[index]/).")
    item_id = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # Dependencies not completed yet: the item is ready when it is queued and this is 0.
    waiting = models.PositiveIntegerField(default=0)
    priority = models.FloatField(
        default=0.0, help_text="Longest remaining path: ready items with more behind them start first."
    )
    dependents = models.JSONField(default=list, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    kept = models.BooleanField(default=False, help_text="Completed in the run this one retries; its result was kept.")
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["step", "index"]
        constraints = [models.UniqueConstraint(fields=["step", "index"], name="dynamic_item_index_unique")]
        indexes = [models.Index(name="dynamic_item_ready", fields=["step", "status", "waiting"])]

    def __str__(self) -> str:
        return f"{self.item_id} ({self.status})"
