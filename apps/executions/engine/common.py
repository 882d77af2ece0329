"""Small pieces every engine module uses: scope names, error dicts, retry backoff, limits."""

from __future__ import annotations

import re
from typing import Any

SEGMENT = re.compile(r"([A-Za-z][A-Za-z0-9_\-]*)\[(\d+)\]/$")
DEFAULT_MAX_ITERATIONS = 10_000
# A scope of at most this many nodes is read whole by a hop (still one statement, bounded size).
SMALL_SCOPE = 16
# Errors that do not count against a retry policy's attempts.
WORKER_LOST = "WorkerLost"
MAX_WORKER_LOSSES = 5


def parent_scope(instance: str) -> tuple[str, str, int]:
    """Split "a[1]/b[2]/" into ("a[1]/", "b", 2)."""
    m = SEGMENT.search(instance)
    if not m:
        raise ValueError(f"not a child scope: {instance!r}")
    return instance[: m.start()], m.group(1), int(m.group(2))


def error_dict(type_: str, message: str, node: str | None = None, **extra: Any) -> dict:
    out = {"type": type_, "message": message}
    if node:
        out["node"] = node
    out.update(extra)
    return out


def backoff_seconds(retry: dict, attempt: int) -> float:
    """Seconds to wait before attempt `attempt + 1`."""
    interval = float(retry.get("interval", 1.0))
    if retry.get("backoff", "exponential") == "exponential":
        interval = interval * (float(retry.get("multiplier", 2.0)) ** (attempt - 1))
    cap = retry.get("max_interval")
    if cap is not None:
        interval = min(interval, float(cap))
    return max(0.0, interval)
