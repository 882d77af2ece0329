"""Badges for workflow lists and the workflow page: signals, long-running loop, schedule or trigger
attached, and the last run's status. A fixed number of queries for a whole page of workflows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from apps.executions.access import visible_executions

from .editing import _list, iter_graphs
from .models import Workflow


@dataclass(frozen=True)
class Badge:
    kind: str  # signals, long-running, schedule, trigger, last-run
    text: str
    title: str
    status: str = ""  # for last-run: the run's status (colours the badge)


def _definition_badges(definition: Any) -> list[Badge]:
    if not isinstance(definition, dict):
        return []
    out: list[Badge] = []
    nodes = [n for _k, _l, g in iter_graphs(definition) for n in _list(g.get("nodes")) if isinstance(n, dict)]
    declared = [s.get("name") for s in _list(definition.get("signals")) if isinstance(s, dict) and s.get("name")]
    if declared or any(n.get("type") == "signal_wait" for n in nodes):
        names = ", ".join(map(str, declared[:5])) or "signal_wait"
        out.append(Badge("signals", "signals", f"Listens for signals: {names}"))
    long_running = [str(n.get("id")) for n in nodes if n.get("type") == "loop" and n.get("long_running")]
    if long_running:
        out.append(
            Badge("long-running", "long-running", f"Long-running loop (continue-as-new): {', '.join(long_running[:5])}")
        )
    return out


def badges_for(workflows: Iterable[Workflow], user: Any) -> dict[int, list[Badge]]:
    """workflow pk -> its badges. Three queries, whatever the number of workflows."""
    workflows = list(workflows)
    ids = [w.pk for w in workflows]
    if not ids:
        return {}
    # Schedules, event triggers and webhooks belong to the triggers app (a room above this one):
    # reached through their related names, so this module imports nothing from it.
    scheduled = set(Workflow.objects.filter(pk__in=ids, schedules__enabled=True).values_list("pk", flat=True))
    triggered = set(
        Workflow.objects.filter(pk__in=ids)
        .filter(_enabled("event_triggers") | _enabled("webhooks"))
        .values_list("pk", flat=True)
    )
    last_runs = dict(
        visible_executions(user)
        .filter(workflow_id__in=ids)
        .order_by("workflow_id", "-created_at", "-pk")
        .distinct("workflow_id")
        .values_list("workflow_id", "status")
    )
    out: dict[int, list[Badge]] = {}
    for workflow in workflows:
        badges = _definition_badges(workflow.definition)
        if workflow.pk in scheduled:
            badges.append(Badge("schedule", "scheduled", "An enabled schedule starts this workflow"))
        if workflow.pk in triggered:
            badges.append(Badge("trigger", "trigger", "An enabled event trigger or webhook starts this workflow"))
        if workflow.pk in last_runs:
            status = last_runs[workflow.pk]
            badges.append(Badge("last-run", f"last run {status}", f"The latest run is {status}", status))
        out[workflow.pk] = badges
    return out


def _enabled(relation: str):
    return Q(**{f"{relation}__enabled": True})
