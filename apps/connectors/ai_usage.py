"""AI accounting: every call to the provider goes through `complete()`.

It answers from the cache when the same normalised prompt was answered before (no provider
call, no budget spent), otherwise checks the daily budgets (the caller's and everyone's
together), records the call as an AIUsage row before sending it (so calls in flight count)
and finishes that row with the model, the tokens and the latency.

Budgets are per UTC day. A request budget is exact: the check and the row that counts the
call are written under one advisory lock. A token budget is checked against the tokens
already spent, so the call that crosses it still completes; the next one is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from . import llm
from .choices import AIPurpose, AIUsageStatus
from .models import AIBudget, AICacheEntry, AIUsage

# One lock for every budget check: the check and the pending row are a few milliseconds,
# while the provider call they guard takes seconds, so serialising them costs nothing.
BUDGET_LOCK_KEY = 0x41495F425544  # "AI_BUD"


class BudgetExceeded(Exception):
    """A daily budget is spent. `scope` is "user" or "total", `kind` "requests" or "tokens"."""

    def __init__(self, scope: str, kind: str, limit: int, used: int, resets_at: datetime):
        self.scope, self.kind, self.limit, self.used, self.resets_at = scope, kind, limit, used, resets_at
        whose = "Your" if scope == "user" else "The shared"
        super().__init__(
            f"{whose} daily AI budget of {limit} {kind} is spent ({used} used); it resets at "
            f"{resets_at:%Y-%m-%d %H:%M} UTC."
        )

    @property
    def retry_after(self) -> int:
        """Whole seconds until the budget resets (at least 1)."""
        return max(1, int((self.resets_at - timezone.now()).total_seconds()) + 1)

    def as_dict(self) -> dict:
        return {
            "detail": str(self),
            "code": "ai_budget_exceeded",
            "scope": self.scope,
            "kind": self.kind,
            "limit": self.limit,
            "used": self.used,
            "resets_at": self.resets_at.isoformat(),
        }


#
# The cache key
#

_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """The prompt as the cache sees it: Unicode NFC, runs of whitespace as one space, trimmed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def cache_key(
    messages: list[dict], *, model: str, temperature: float | None, max_tokens: int | None, json_mode: bool
) -> str:
    """sha256 of the normalised messages and every option that changes the answer."""
    canonical = {
        "messages": [[m.get("role", ""), normalise_text(str(m.get("content", "")))] for m in messages],
        "model": model,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "json": json_mode,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


#
# Budgets
#


def day_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start of today and of tomorrow, UTC."""
    now = now or timezone.now()
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


@dataclass
class Limits:
    user_requests: int
    user_tokens: int
    total_requests: int
    total_tokens: int


def limits_for(user: Any) -> Limits:
    """The caller's and the total daily limits: budget rows first, then the settings (0 = no limit)."""
    user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    rows = {b.user_id: b for b in AIBudget.objects.filter(Q(user__isnull=True) | Q(user_id=user_id))}
    mine, everyone = rows.get(user_id) if user_id else None, rows.get(None)

    def pick(row: AIBudget | None, field: str, default: int) -> int:
        value = getattr(row, field) if row is not None else None
        return default if value is None else value

    return Limits(
        user_requests=pick(mine, "requests_per_day", settings.AI_DAILY_REQUESTS_PER_USER),
        user_tokens=pick(mine, "tokens_per_day", settings.AI_DAILY_TOKENS_PER_USER),
        total_requests=pick(everyone, "requests_per_day", settings.AI_DAILY_REQUESTS_TOTAL),
        total_tokens=pick(everyone, "tokens_per_day", settings.AI_DAILY_TOKENS_TOTAL),
    )


def spent_today(user: Any) -> dict[str, int]:
    """Provider calls and tokens spent today by `user` and by everyone (cache hits cost nothing)."""
    start, _ = day_bounds()
    user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    mine = Q(user_id=user_id) if user_id else Q(pk__in=[])
    row = AIUsage.objects.filter(created_at__gte=start, cache_hit=False).aggregate(
        all_requests=Count("id"),
        all_tokens=Sum("total_tokens"),
        my_requests=Count("id", filter=mine),
        my_tokens=Sum("total_tokens", filter=mine),
    )
    return {
        "total_requests": row["all_requests"] or 0,
        "total_tokens": row["all_tokens"] or 0,
        "user_requests": row["my_requests"] or 0,
        "user_tokens": row["my_tokens"] or 0,
    }


def check_budget(user: Any) -> None:
    """Raise BudgetExceeded when a call now would go over a daily budget."""
    limits, spent = limits_for(user), spent_today(user)
    _, resets_at = day_bounds()
    checks = (
        [
            ("user", "requests", limits.user_requests, spent["user_requests"]),
            ("user", "tokens", limits.user_tokens, spent["user_tokens"]),
        ]
        if getattr(user, "is_authenticated", False)
        else []
    )
    checks += [
        ("total", "requests", limits.total_requests, spent["total_requests"]),
        ("total", "tokens", limits.total_tokens, spent["total_tokens"]),
    ]
    for scope, kind, limit, used in checks:
        if limit and used >= limit:
            raise BudgetExceeded(scope, kind, limit, used, resets_at)


def budget_report(user: Any) -> dict:
    """What `user` may still spend today: limits (null = unlimited), used, remaining, reset time."""
    limits, spent = limits_for(user), spent_today(user)
    _, resets_at = day_bounds()

    def line(limit: int, used: int) -> dict:
        return {"limit": limit or None, "used": used, "remaining": max(0, limit - used) if limit else None}

    return {
        "user": {
            "requests": line(limits.user_requests, spent["user_requests"]),
            "tokens": line(limits.user_tokens, spent["user_tokens"]),
        },
        "total": {
            "requests": line(limits.total_requests, spent["total_requests"]),
            "tokens": line(limits.total_tokens, spent["total_tokens"]),
        },
        "resets_at": resets_at.isoformat(),
    }


#
# The call
#


def _tokens(usage: Any) -> tuple[int, int, int]:
    if not isinstance(usage, dict):
        return 0, 0, 0

    def number(key: str) -> int:
        value = usage.get(key)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else 0

    prompt, completion = number("prompt_tokens"), number("completion_tokens")
    return prompt, completion, number("total_tokens") or prompt + completion


def complete(
    messages: list[dict],
    *,
    user: Any,
    purpose: str,
    execution_id: int | None = None,
    node_id: str = "",
    model: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    timeout: float | None = None,
    json_mode: bool = False,
    use_cache: bool = True,
) -> dict:
    """llm.chat with accounting. Returns llm.chat's answer plus `cached` (bool).

    Raises BudgetExceeded (nothing sent), llm.NotConfigured, llm.ProviderError (recorded).
    Must not run inside a transaction the caller keeps open: the usage row is committed
    before the provider is called so that calls in flight count.
    """
    if not llm.configured():
        raise llm.NotConfigured(llm.not_configured_message())
    model = model or settings.AI_MODEL
    user_obj = user if getattr(user, "is_authenticated", False) else None
    key = cache_key(messages, model=model, temperature=temperature, max_tokens=max_tokens, json_mode=json_mode)
    cache_on = use_cache and settings.AI_CACHE_SECONDS > 0
    started = time.monotonic()
    if cache_on:
        entry = AICacheEntry.objects.filter(key=key, expires_at__gt=timezone.now()).first()
        if entry is not None:
            AICacheEntry.objects.filter(key=key).update(hits=F("hits") + 1)
            AIUsage.objects.create(
                user=user_obj,
                purpose=purpose,
                status=AIUsageStatus.CACHED,
                model=entry.model,
                cache_hit=True,
                cache_key=key,
                latency_ms=int((time.monotonic() - started) * 1000),
                execution_id=execution_id,
                node_id=node_id[:64],
            )
            return {**entry.answer, "cached": True}
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [BUDGET_LOCK_KEY])
        check_budget(user_obj)
        usage = AIUsage.objects.create(
            user=user_obj, purpose=purpose, model=model, cache_key=key, execution_id=execution_id, node_id=node_id[:64]
        )
    started = time.monotonic()
    try:
        answer = llm.chat(
            messages, model=model, temperature=temperature, max_tokens=max_tokens, timeout=timeout, json_mode=json_mode
        )
    except llm.ProviderError as exc:
        AIUsage.objects.filter(pk=usage.pk).update(
            status=AIUsageStatus.ERROR, error=str(exc)[:500], latency_ms=int((time.monotonic() - started) * 1000)
        )
        raise
    prompt_tokens, completion_tokens, total_tokens = _tokens(answer.get("usage"))
    AIUsage.objects.filter(pk=usage.pk).update(
        status=AIUsageStatus.OK,
        model=str(answer.get("model") or model)[:200],
        latency_ms=int((time.monotonic() - started) * 1000),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=total_tokens,
    )
    if cache_on:
        now = timezone.now()
        AICacheEntry.objects.filter(expires_at__lte=now).delete()
        AICacheEntry.objects.update_or_create(
            key=key,
            defaults={
                "model": model,
                "answer": answer,
                "hits": 0,
                "expires_at": now + timedelta(seconds=settings.AI_CACHE_SECONDS),
            },
        )
    return {**answer, "cached": False}


__all__ = ["AIPurpose", "BudgetExceeded", "budget_report", "cache_key", "check_budget", "complete", "normalise_text"]
