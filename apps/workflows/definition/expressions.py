"""Resolving params against run data, and evaluating declarative conditions.

A string that is exactly a JSONPath (``"$.input.orders"``) is replaced by the value
it points to. ``{{ $.path }}`` inside a longer string is replaced by the value's
text; a string that is only one ``{{ … }}`` keeps the value's type. ``{{ $.x | default }}``
gives a fallback. Objects and lists are resolved recursively. Nothing is evaluated
as code.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import jsonpath

TEMPLATE = re.compile(r"\{\{\s*(\$[^{}|]*?)\s*(?:\|\s*([^{}]*?)\s*)?\}\}")
PLAIN_PATH = re.compile(r"^\$(\.[A-Za-z_*][\w\-]*|\[[^\]]*\])*$")

OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "contains", "exists", "matches")


class ReferenceError_(KeyError):
    """A reference pointed at nothing and had no default."""


class ConditionError(ValueError):
    pass


def is_plain_path(value: str) -> bool:
    return bool(PLAIN_PATH.match(value))


def _default_value(raw: str | None) -> Any:
    if raw is None:
        return jsonpath.MISSING
    try:
        return json.loads(raw)
    except ValueError:
        return raw.strip("'\"")


def _lookup(context: dict, path: str, default: Any = jsonpath.MISSING) -> Any:
    try:
        return jsonpath.find(context, path, default)
    except KeyError:
        raise ReferenceError_(f"{path} matched nothing") from None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, default=str)


def render_string(value: str, context: dict) -> Any:
    if value.startswith("$") and is_plain_path(value):
        return _lookup(context, value)
    if "{{" not in value:
        return value
    whole = TEMPLATE.fullmatch(value.strip())
    if whole:
        return _lookup(context, whole.group(1), _default_value(whole.group(2)))
    return TEMPLATE.sub(lambda m: _text(_lookup(context, m.group(1), _default_value(m.group(2)))), value)


def resolve(value: Any, context: dict) -> Any:
    """Return `value` with every reference and template resolved against `context`."""
    if isinstance(value, str):
        return render_string(value, context)
    if isinstance(value, dict):
        return {key: resolve(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, context) for item in value]
    return value


def references_in(value: Any) -> list[str]:
    """Every JSONPath that `value` refers to (for the validator)."""
    found: list[str] = []
    if isinstance(value, str):
        if value.startswith("$") and " " not in value:
            found.append(value)
        found.extend(m.group(1) for m in TEMPLATE.finditer(value))
    elif isinstance(value, dict):
        for item in value.values():
            found.extend(references_in(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(references_in(item))
    return found


#
# Conditions
#


def _var_path(var: str) -> str:
    """`order.total` is shorthand for `$.vars.order.total`."""
    return var if var.startswith("$") else "$.vars." + var


def _compare(op: str, left: Any, right: Any) -> bool:
    try:
        if op == "eq":
            return left == right
        if op == "neq":
            return left != right
        if op == "gt":
            return left is not None and left > right
        if op == "gte":
            return left is not None and left >= right
        if op == "lt":
            return left is not None and left < right
        if op == "lte":
            return left is not None and left <= right
        if op == "in":
            return left in right if isinstance(right, (list, str, dict)) else False
        if op == "contains":
            return right in left if isinstance(left, (list, str, dict)) else False
        if op == "matches":
            # re.search is linear-time safe enough for short user patterns; cap both sizes.
            return isinstance(left, str) and re.search(str(right)[:500], left[:100_000]) is not None
    except TypeError:
        return False
    raise ConditionError(f"unknown operator {op!r}")


def evaluate(condition: dict, context: dict) -> bool:
    """Evaluate a declarative condition: {"var", "op", "value" | "value_from"} or all/any/not."""
    if "all" in condition:
        return all(evaluate(c, context) for c in condition["all"])
    if "any" in condition:
        return any(evaluate(c, context) for c in condition["any"])
    if "not" in condition:
        return not evaluate(condition["not"], context)
    op = condition["op"]
    path = _var_path(condition["var"])
    if op == "exists":
        present = jsonpath.exists(context, path)
        return present if condition.get("value", True) else not present
    left = jsonpath.find(context, path, None)
    if "value_from" in condition:
        right = jsonpath.find(context, condition["value_from"], None)
    else:
        right = resolve(condition.get("value"), context)
    return _compare(op, left, right)
