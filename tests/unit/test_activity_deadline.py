"""An activity that notices its own deadline fails with the StepTimeout message docs/definition.md gives."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.executions.activities import ActivityContext, ActivityError


def test_sleeping_past_the_deadline_fails_with_the_documented_step_timeout_message():
    ctx = ActivityContext(execution_id=1, step_id=1, node_id="slow", attempt=1, deadline=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ActivityError) as info:
        ctx.sleep(5)
    assert info.value.type == "StepTimeout"
    assert info.value.message == "the step did not finish within its timeout"  # was "the step ran past its timeout"
