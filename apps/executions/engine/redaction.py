"""Secrets never reach events, logs, exports or replay: values under secret-looking keys
are replaced before anything is written."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"
# "token" but not "tokens" (an LLM's usage.prompt_tokens is a count, not a secret).
SECRET_KEY = re.compile(
    r"(authorization|password|passwd|secret|token(?!s)|api[-_]?key|apikey|credential|cookie|private[-_]?key)", re.I
)
BEARER = re.compile(r"\b(Bearer|Basic|Api-Key|Token)\s+[A-Za-z0-9._~+/=\-]{6,}", re.I)


def redact(value: Any, _depth: int = 0) -> Any:
    """Return a copy of `value` with secrets replaced by "[redacted]"."""
    if _depth > 50:
        return value
    if isinstance(value, dict):
        return {
            key: (
                REDACTED
                if isinstance(key, str) and SECRET_KEY.search(key) and item not in (None, "")
                else redact(item, _depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, _depth + 1) for item in value]
    if isinstance(value, str) and BEARER.search(value):
        return BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
    return value
