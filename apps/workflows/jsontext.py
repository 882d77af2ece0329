"""Parse JSON typed by people (forms, uploads) the way PostgreSQL's jsonb will store it.

Python's json module accepts NaN, Infinity and numbers too large for a float (1e400 becomes inf);
jsonb refuses all three, so letting them through turns a typo into a server error on save.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large a number")
    return value


def loads(text: str | bytes) -> Any:
    """json.loads that rejects NaN, Infinity and out-of-range numbers (ValueError, as json does)."""
    return json.loads(text, parse_constant=_constant, parse_float=_finite)
