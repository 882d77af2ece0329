from django.db import models


class ExecutionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    CONTINUED = "continued", "Continued as new"


class StepStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"  # waiting for its retry backoff
    PENDING = "pending", "Pending"  # dispatched to a worker
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"  # timers, loops and parallel nodes while their children run
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    SKIPPED = "skipped", "Skipped"


class Trigger(models.TextChoices):
    MANUAL = "manual", "Manual"
    API = "api", "API"
    COMMAND = "command", "Command line"
    SCHEDULE = "schedule", "Schedule"
    EVENT = "event", "Event"
    WEBHOOK = "webhook", "Webhook"
    RETRY = "retry", "Retry"
    CHILD = "child", "Child workflow"
    CONTINUE = "continue", "Continue as new"


FINISHED_EXECUTION = {
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.CANCELLED,
    ExecutionStatus.CONTINUED,
}
FINISHED_STEP = {StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.CANCELLED, StepStatus.SKIPPED}
ACTIVE_STEP = {StepStatus.SCHEDULED, StepStatus.PENDING, StepStatus.RUNNING, StepStatus.WAITING}
