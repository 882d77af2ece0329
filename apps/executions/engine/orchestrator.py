"""The engine's entry points, in one place for its callers (views, API, tasks, commands).

Every state change happens inside one transaction holding the execution's row lock
(SELECT … FOR UPDATE); Celery messages, revocations and live updates go out after commit.
Advancing twice is harmless: a finished step is taken into account once (its `advanced`
flag), and a step runs only if it can be claimed with a conditional UPDATE from `pending`.

The work is split by concern:

- `advancing`: starting runs and taking finished steps into account;
- `steps`: executing steps in a worker (the hop, sticky steps, chords, heartbeats);
- `recovery`: timers, deadlines and the sweep;
- `actions`: cancel, pause, resume, retries;
- `dispatch` and `failures`: side effects after commit, and the engine's own errors.
"""

from __future__ import annotations

from .actions import (
    RetryPlan,
    _upstream_of,
    cancel_execution,
    pause_execution,
    plan_retry_with_changes,
    resume_execution,
    resume_waiting_step,
    retry_execution,
    retry_failed,
    retry_with_changes,
)
from .advancing import InputError, advance, check_input, start_execution, with_input_defaults
from .dispatch import Sticky, _apply, plan_of
from .recovery import check_deadline, fire_timer, stuck_executions, sweep
from .steps import (
    STICKY_BUDGET_SECONDS,
    STICKY_BUDGET_STEPS,
    execute_chord_step,
    execute_step,
    finish_step,
    heartbeat,
    running,
    running_steps,
)

__all__ = [
    "InputError",
    "RetryPlan",
    "plan_retry_with_changes",
    "STICKY_BUDGET_SECONDS",
    "STICKY_BUDGET_STEPS",
    "Sticky",
    "_apply",
    "_upstream_of",
    "advance",
    "cancel_execution",
    "check_deadline",
    "check_input",
    "execute_chord_step",
    "execute_step",
    "finish_step",
    "fire_timer",
    "heartbeat",
    "pause_execution",
    "plan_of",
    "resume_execution",
    "resume_waiting_step",
    "retry_execution",
    "retry_failed",
    "retry_with_changes",
    "running",
    "running_steps",
    "start_execution",
    "stuck_executions",
    "sweep",
    "with_input_defaults",
]
