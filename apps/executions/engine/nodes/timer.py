"""The timer node: wait until a time or for a duration, as a durable Timer row."""

from __future__ import annotations

import math
from datetime import UTC, timedelta
from typing import TYPE_CHECKING

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.workflows.definition import expressions
from apps.workflows.definition.plan import NodePlan

from ...choices import StepStatus
from ...models import Timer

if TYPE_CHECKING:
    from ..runtime import Runtime


def activate(rt: Runtime, scope: str, node: NodePlan, extra: dict | None) -> None:
    try:
        if "until" in node.spec:
            raw = rt._resolve(scope, node, node.spec["until"], extra)
            fire_at = parse_datetime(raw) if isinstance(raw, str) else None
            if fire_at is None:
                raise ValueError(f"until: {raw!r} is not an ISO 8601 time")
            if timezone.is_naive(fire_at):
                fire_at = timezone.make_aware(fire_at, UTC)
        else:
            seconds = float(rt._resolve(scope, node, node.spec["duration"], extra))
            if not math.isfinite(seconds) or seconds < 0:
                raise ValueError(f"duration: {seconds} is not a number of seconds")
            fire_at = rt.now + timedelta(seconds=seconds)
    except (ValueError, TypeError, KeyError, expressions.ReferenceError_) as exc:
        rt._fail_now(scope, node, "TimerError", str(exc))
        return
    step = rt.new_step(scope, node, status=StepStatus.WAITING, started_at=rt.now, scheduled_for=fire_at)
    timer = Timer(execution=rt.ex, step=step, kind=Timer.Kind.TIMER, fire_at=fire_at)
    timer.save(force_insert=True)
    rt.effects.timers.append(timer)
    rt.event("timer_started", node=node.id, scope=scope, step=step, payload={"fire_at": fire_at.isoformat()})
