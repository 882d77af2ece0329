"""Work distribution: who an approval's work item is offered to, and why.

An approval node may carry an `allocation` block:

    {"strategy": "offer_all" | "round_robin" | "shortest_queue" | "random",
     "capabilities": ["finance"], "max_open_items": 3, "claim_timeout": 3600}

The candidates are the node's users plus the members of its groups (at offer time), minus the
inactive, the unavailable (WorkerProfile.available / away_until), those lacking a capability,
those at their open-item limit (the node's or their own, whichever is lower) and those who
declined or let a claim time out. `offer_all` offers the item to every candidate; the other
strategies pick one. Without an allocation block the item is offered to the node's users and
teams as they are (team membership is read when the inbox is), which is the old behaviour.

Every choice is written down (`WorkItem.allocation`): the reason each person got the item,
who was skipped and why, and a log of offers and re-offers, shown in the inbox and the admin.
Plain functions over explicit arguments; the caller holds the run's row lock (and, for
round robin and shortest queue, this module takes the node's AllocationCursor row lock, so
concurrent offers from many runs of one node are decided one after another).
"""

from __future__ import annotations

import random
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Count
from django.utils import timezone

from .choices import HELD_STATES, AllocationStrategy, WorkItemState
from .models import AllocationCursor, WorkerProfile, WorkItem

SINGLE = (AllocationStrategy.ROUND_ROBIN, AllocationStrategy.SHORTEST_QUEUE, AllocationStrategy.RANDOM)


def node_spec(definition: Any, node_id: str) -> dict:
    """The node `node_id` of a definition, looked up in nested bodies and branches too ({} if absent)."""
    stack = [definition] if isinstance(definition, dict) else []
    while stack:
        graph = stack.pop()
        for node in graph.get("nodes") or []:
            if not isinstance(node, dict):
                continue
            if node.get("id") == node_id:
                return node
            if isinstance(node.get("body"), dict):
                stack.append(node["body"])
            stack.extend(b for b in node.get("branches") or [] if isinstance(b, dict))
    return {}


def normalise_tags(tags: Any) -> list[str]:
    """Capabilities as stored: trimmed, lower case, unique, sorted."""
    if isinstance(tags, str):
        tags = tags.split(",")
    return sorted({str(t).strip().lower() for t in tags or [] if str(t).strip()})


def open_item_counts(user_ids: list[int]) -> dict[int, int]:
    """Open items per person: offered to them by name (not declined) or held by them.

    Items offered to a whole team are not counted: nobody in particular has them yet.
    """
    if not user_ids:
        return {}
    offered = list(
        WorkItem.offered_users.through.objects.filter(
            user_id__in=user_ids, workitem__state=WorkItemState.OFFERED
        ).values_list("user_id", "workitem_id")
    )
    declined = set(
        WorkItem.declined_by.through.objects.filter(
            user_id__in=user_ids, workitem_id__in=[w for _, w in offered]
        ).values_list("user_id", "workitem_id")
    )
    counts = dict.fromkeys(user_ids, 0)
    for pair in offered:
        if pair not in declined:
            counts[pair[0]] += 1
    for row in (
        WorkItem.objects.filter(state__in=HELD_STATES, claimed_by_id__in=user_ids)
        .values("claimed_by_id")
        .annotate(n=Count("pk"))
    ):
        counts[row["claimed_by_id"]] += row["n"]
    return counts


@dataclass
class Decision:
    strategy: str
    users: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    candidates: list[str] = field(default_factory=list)

    def record(self, spec: dict, *, event: str, note: str = "") -> dict:
        """The `allocation` document for the item (its log gets one entry per call)."""
        now = timezone.now().isoformat()
        entry = {
            "at": now,
            "event": event,
            "to": [u.get_username() for u in self.users] + [f"team {g.name}" for g in self.groups],
        }
        if note:
            entry["reason"] = note
        return {
            "strategy": self.strategy,
            "capabilities": normalise_tags(spec.get("capabilities")),
            "max_open_items": spec.get("max_open_items"),
            "candidates": self.candidates,
            "reasons": self.reasons,
            "skipped": self.skipped,
            "log": [entry],
        }


def _sources(users: list, groups: list) -> dict[int, tuple[Any, list[str]]]:
    """Every active person named or in a named team, with where they came from."""
    User = get_user_model()
    found: dict[int, tuple[Any, list[str]]] = {}
    for user in users:
        if user.is_active:
            found[user.pk] = (user, ["by name"])
    if groups:
        members = User.objects.filter(groups__in=groups, is_active=True).prefetch_related("groups").distinct()
        names = {g.pk: g.name for g in groups}
        for user in members:
            teams = [f"team {names[g.pk]}" for g in user.groups.all() if g.pk in names]
            found.setdefault(user.pk, (user, []))[1].extend(teams)
    return found


def decide(
    spec: dict,
    users: list,
    groups: list,
    *,
    workflow_id: int,
    node_id: str,
    exclude: AbstractSet[int] = frozenset(),
    after: str = "",
    event: str = "offered",
) -> Decision:
    """Who gets the item. `spec` is the node's allocation block ({} for none); `exclude` holds
    the ids of people who declined or timed out; `after` is who had it before (re-offers)."""
    if not spec:
        reasons = {u.get_username(): "offered to you by name" for u in users}
        return Decision(strategy="", users=list(users), groups=list(groups), reasons=reasons)
    strategy = spec.get("strategy") or AllocationStrategy.OFFER_ALL
    wanted = set(normalise_tags(spec.get("capabilities")))
    limit = spec.get("max_open_items")
    now = timezone.now()
    pool = _sources(users, groups)
    ids = list(pool)
    profiles = {p.user_id: p for p in WorkerProfile.objects.filter(user_id__in=ids)}
    cursor = None
    if strategy in (AllocationStrategy.ROUND_ROBIN, AllocationStrategy.SHORTEST_QUEUE):
        # The lock orders concurrent offers of this node; the run's lock is already held.
        AllocationCursor.objects.get_or_create(workflow_id=workflow_id, node_id=node_id[:64])
        cursor = AllocationCursor.objects.select_for_update().get(workflow_id=workflow_id, node_id=node_id[:64])
    counts = open_item_counts(ids)
    decision = Decision(strategy=strategy)
    eligible: list[tuple[Any, list[str]]] = []
    for user_id, (user, origin) in sorted(pool.items(), key=lambda kv: kv[1][0].get_username()):
        name = user.get_username()
        profile = profiles.get(user_id)
        own_limit = profile.max_open_items if profile else None
        effective = min(x for x in (limit, own_limit) if x) if (limit or own_limit) else None
        if user_id in exclude:
            decision.skipped[name] = "declined or let a claim time out"
        elif profile and not profile.is_available(now):
            decision.skipped[name] = (
                f"away until {profile.away_until:%Y-%m-%d %H:%M}"
                if profile.available and profile.away_until
                else "unavailable"
            )
        elif wanted - set(profile.capabilities if profile else []):
            decision.skipped[name] = "lacks " + ", ".join(sorted(wanted - set(profile.capabilities if profile else [])))
        elif effective is not None and counts.get(user_id, 0) >= effective:
            decision.skipped[name] = f"{counts[user_id]} open items (limit {effective})"
        else:
            eligible.append((user, origin))
    decision.candidates = [u.get_username() for u, _ in eligible]
    if not eligible:
        return decision
    filters = []
    if wanted:
        filters.append("has " + ", ".join(sorted(wanted)))
    if limit:
        filters.append(f"fewer than {limit} open items")
    where = lambda origin: " and ".join(origin)  # noqa: E731
    prefix = f"re-offered after {after}: " if after else ""
    if strategy == AllocationStrategy.OFFER_ALL:
        decision.users = [u for u, _ in eligible]
        for user, origin in eligible:
            decision.reasons[user.get_username()] = (
                prefix + f"offered to everyone eligible ({where(origin)}{'; ' + ', '.join(filters) if filters else ''})"
            )
        return decision
    names = [u.get_username() for u, _ in eligible]
    if strategy == AllocationStrategy.ROUND_ROBIN:
        last = after or (cursor.last_username if cursor is not None else "")
        index = next((i for i, n in enumerate(names) if n > last), 0) if last else 0
        chosen, why = eligible[index], f"round robin: next after {last}" if last else "round robin: first in turn"
    elif strategy == AllocationStrategy.SHORTEST_QUEUE:
        index = min(range(len(eligible)), key=lambda i: (counts.get(eligible[i][0].pk, 0), names[i]))
        n = counts.get(eligible[index][0].pk, 0)
        chosen, why = eligible[index], f"shortest queue: {n} open item{'s' if n != 1 else ''}, the fewest"
    else:
        chosen, why = random.choice(eligible), "random pick"
    user, origin = chosen
    decision.users = [user]
    decision.reasons[user.get_username()] = (
        prefix + f"{why} among {len(eligible)} eligible ({where(origin)}{'; ' + ', '.join(filters) if filters else ''})"
    )
    if cursor is not None:
        cursor.last_username = user.get_username()
        cursor.save(update_fields=["last_username", "updated_at"])
    return decision


def why(item: WorkItem, user: User, group_ids: set[int] | None = None) -> str:
    """Why `user` has the item, in a few words (the inbox shows it). Pass the user's group ids
    when asking for many items."""
    reasons = (item.allocation or {}).get("reasons") or {}
    name = user.get_username()
    if item.claimed_by_id == user.pk and item.state in HELD_STATES:
        for entry in reversed((item.allocation or {}).get("log") or []):
            if entry.get("event") == "reassigned" and name in entry.get("to", []):
                return entry.get("reason", "reassigned to you")
    if name in reasons:
        return reasons[name]
    if group_ids is None:
        group_ids = set(user.groups.values_list("pk", flat=True))
    teams = sorted(g.name for g in item.offered_groups.all() if g.pk in group_ids)
    return f"offered to your team {', '.join(teams)}" if teams else "offered to you"


def log(item: WorkItem, event: str, to: list[str], reason: str = "") -> None:
    """Append to the item's allocation log (the caller saves the item)."""
    allocation = dict(item.allocation or {})
    entry = {"at": timezone.now().isoformat(), "event": event, "to": to}
    if reason:
        entry["reason"] = reason
    allocation["log"] = [*allocation.get("log", []), entry]
    item.allocation = allocation


__all__ = ["Decision", "SINGLE", "decide", "log", "node_spec", "normalise_tags", "open_item_counts", "why"]
