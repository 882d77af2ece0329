"""Activities: the units of work a step runs. See builtin.py for the ones we ship."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone


class ActivityError(Exception):
    """An activity failed. `type` is what retry policies and error handlers match on."""

    def __init__(self, type: str, message: str, *, retryable: bool = True, details: dict | None = None):
        super().__init__(message)
        self.type = type
        self.message = message
        self.retryable = retryable
        self.details = details or {}


class StepCancelled(Exception):
    """Raised inside an activity when its step was cancelled or timed out meanwhile."""


@dataclass
class ActivityContext:
    """What an activity may know about the step running it."""

    execution_id: int
    step_id: int
    node_id: str
    attempt: int
    deadline: datetime | None = None
    variables: dict = field(default_factory=dict)
    logs: list[dict] = field(default_factory=list)
    still_running: Callable[[], bool] = lambda: True
    dry_run: bool = False

    def log(self, message: str, level: str = "info") -> None:
        self.logs.append({"at": timezone.now().isoformat(), "level": level, "message": str(message)[:10_000]})

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        return (self.deadline - timezone.now()).total_seconds()

    def sleep(self, seconds: float) -> None:
        """Sleep cooperatively: stop early when the step is cancelled or past its deadline."""
        end = time.monotonic() + seconds
        next_check = time.monotonic() + 0.5
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            remaining = self.remaining()
            if remaining is not None and remaining <= 0:
                raise ActivityError("StepTimeout", "the step did not finish within its timeout")
            time.sleep(min(left, 0.1))
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.5
                if not self.still_running():
                    raise StepCancelled()


Output = Any
