"""Measurements of finished runs and steps, and the hourly rollups that outlive them.

Rows are written once per finished run (apps.metrics.collect), never on a step's
path. Raw rows are kept WB_METRICS_RAW_DAYS (exact percentiles); HourlyRollup rows
keep counts, sums and a fixed-bucket duration histogram for WB_METRICS_ROLLUP_DAYS.
Execution ids are plain integers, not foreign keys: metrics outlive the execution
retention period.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

# Upper-open bucket bounds (ms) of the duration histograms: bucket i holds
# BOUNDS[i] <= d < BOUNDS[i + 1]; the last one holds everything from a day up.
# Postgres' width_bucket(d, BOUNDS) returns i + 1. Never reorder: stored rollups index them.
HISTOGRAM_BOUNDS_MS: tuple[float, ...] = (
    0,
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    1_800_000,
    3_600_000,
    7_200_000,
    21_600_000,
    86_400_000,
)


class ExecutionMetric(models.Model):
    """One finished run: written after the commit that finished it."""

    execution_id = models.BigIntegerField(unique=True)
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16)
    trigger = models.CharField(max_length=16)
    error_type = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_ms = models.FloatField()
    step_count = models.PositiveIntegerField(default=0)
    correlation_id = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["finished_at"]),
            models.Index(fields=["workflow", "finished_at"]),
            # The slow-run anomalies: runs of a workflow above its threshold, longest first.
            models.Index(fields=["workflow", "duration_ms"], name="metrics_run_wf_duration"),
        ]

    def __str__(self) -> str:
        return f"run {self.execution_id} {self.status} {self.duration_ms:.0f} ms"


class StepMetric(models.Model):
    """One finished step activation (one row per attempt), derived from StepRun at run end."""

    execution_id = models.BigIntegerField()
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    node_id = models.CharField(max_length=64)
    node_type = models.CharField(max_length=32)
    activity = models.CharField(max_length=100, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16)
    error_type = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_ms = models.FloatField()
    queue_wait_ms = models.FloatField(
        null=True, blank=True, help_text="Dispatch to start; empty for steps the engine ran without a queue."
    )

    class Meta:
        indexes = [models.Index(fields=["finished_at"]), models.Index(fields=["workflow", "finished_at"])]

    def __str__(self) -> str:
        return f"{self.node_id} #{self.attempt} {self.status} {self.duration_ms:.0f} ms"


class HourlyRollup(models.Model):
    """Runs of one workflow that finished in one UTC hour, summarised."""

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField(help_text="Start of the UTC hour.")
    count = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    failures_by_type = models.JSONField(default=dict, blank=True)
    sum_ms = models.FloatField(default=0)
    min_ms = models.FloatField(null=True, blank=True)
    max_ms = models.FloatField(null=True, blank=True)
    histogram = ArrayField(
        models.PositiveIntegerField(), default=list, help_text="Counts per HISTOGRAM_BOUNDS_MS bucket."
    )
    queue_wait_sum_ms = models.FloatField(default=0)
    queue_wait_count = models.PositiveIntegerField(default=0)
    queue_wait_min_ms = models.FloatField(null=True, blank=True)
    queue_wait_max_ms = models.FloatField(null=True, blank=True)
    queue_wait_histogram = ArrayField(
        models.PositiveIntegerField(),
        default=list,
        blank=True,
        help_text="Queue waits of the workflow's steps finished in the hour, per HISTOGRAM_BOUNDS_MS bucket.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "hour"], name="rollup_workflow_hour")]
        indexes = [models.Index(fields=["hour"])]

    def __str__(self) -> str:
        return f"{self.workflow_id} {self.hour:%Y-%m-%d %H}:00 ({self.count} runs)"


class StepHourlyRollup(models.Model):
    """Step activations of one node of one workflow that finished in one UTC hour, summarised
    (one row per node, activity and hour; attempts counted each)."""

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField(help_text="Start of the UTC hour.")
    node_id = models.CharField(max_length=64)
    node_type = models.CharField(max_length=32)
    activity = models.CharField(max_length=100, blank=True)
    count = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0, help_text="Activations with attempt > 1.")
    sum_ms = models.FloatField(default=0)
    min_ms = models.FloatField(null=True, blank=True)
    max_ms = models.FloatField(null=True, blank=True)
    histogram = ArrayField(
        models.PositiveIntegerField(), default=list, help_text="Counts per HISTOGRAM_BOUNDS_MS bucket."
    )
    queue_wait_sum_ms = models.FloatField(default=0)
    queue_wait_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "hour", "node_id", "node_type", "activity"], name="step_rollup_node_hour"
            )
        ]
        indexes = [models.Index(fields=["hour"])]

    def __str__(self) -> str:
        return f"{self.workflow_id} {self.node_id} {self.hour:%Y-%m-%d %H}:00 ({self.count} steps)"


class DailyRollup(models.Model):
    """The HourlyRollup rows of one workflow and one UTC day, added up (rebuilt from them by
    roll_up): ranges of weeks and months read a row a day instead of 24."""

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    day = models.DateTimeField(help_text="Start of the UTC day.")
    count = models.PositiveIntegerField(default=0)
    successes = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    failures_by_type = models.JSONField(default=dict, blank=True)
    sum_ms = models.FloatField(default=0)
    min_ms = models.FloatField(null=True, blank=True)
    max_ms = models.FloatField(null=True, blank=True)
    histogram = ArrayField(models.PositiveIntegerField(), default=list)
    queue_wait_sum_ms = models.FloatField(default=0)
    queue_wait_count = models.PositiveIntegerField(default=0)
    queue_wait_min_ms = models.FloatField(null=True, blank=True)
    queue_wait_max_ms = models.FloatField(null=True, blank=True)
    queue_wait_histogram = ArrayField(models.PositiveIntegerField(), default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "day"], name="daily_rollup_workflow_day")]
        indexes = [models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.workflow_id} {self.day:%Y-%m-%d} ({self.count} runs)"


class StepDailyRollup(models.Model):
    """The StepHourlyRollup rows of one node and one UTC day, added up (rebuilt from them by roll_up)."""

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="+")
    day = models.DateTimeField(help_text="Start of the UTC day.")
    node_id = models.CharField(max_length=64)
    node_type = models.CharField(max_length=32)
    activity = models.CharField(max_length=100, blank=True)
    count = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    sum_ms = models.FloatField(default=0)
    min_ms = models.FloatField(null=True, blank=True)
    max_ms = models.FloatField(null=True, blank=True)
    histogram = ArrayField(models.PositiveIntegerField(), default=list)
    queue_wait_sum_ms = models.FloatField(default=0)
    queue_wait_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "day", "node_id", "node_type", "activity"], name="step_daily_rollup_node_day"
            )
        ]
        indexes = [models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.workflow_id} {self.node_id} {self.day:%Y-%m-%d} ({self.count} steps)"


class RollupState(models.Model):
    """One row (pk 1): the rollups are complete for every UTC hour before `complete_until`."""

    complete_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"rollups complete until {self.complete_until}"


class OperationsPage(models.Model):
    """No table: gives the admin's operations page a place in the admin index."""

    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = "operations"
        verbose_name_plural = "operations"

    def __str__(self) -> str:
        return "operations"
