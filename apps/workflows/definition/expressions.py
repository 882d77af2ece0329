"""Resolving params against run data, and evaluating declarative conditions.

A string that is exactly a JSONPath (``"$.input.orders"``) is replaced by the value
it points to. ``{{ $.path }}`` inside a longer string is replaced by the value's
text; a string that is only one ``{{ … }}`` keeps the value's type. ``{{ $.x | default }}``
gives a fallback. Objects and lists are resolved recursively. Nothing is evaluated
as code.

Everything here runs on data written by users, in workers and in the web process alike, so
every cost is bounded: `matches` uses RE2 (linear time, no backtracking) with a pattern length
and memory limit, and the text that templates build is sized before it is joined, within a
budget per evaluation (settings WB_REGEX_* and WB_EXPRESSION_*, see docs/hostile-input.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import re2

from . import jsonpath

# `{{ $.path }}` or `{{ $.path | default }}`. Matched in two steps, a span then its parts, because
# the one-regex form (lazy groups next to \s*) backtracked quadratically: "{{$" and 20,000 spaces
# took 13 s to resolve and 20 s to validate. Each span here ends at the first brace: linear.
TEMPLATE_SPAN = re.compile(r"\{\{([^{}|]*)(?:\|([^{}]*))?\}\}")
PLAIN_PATH = re.compile(r"^\$(\.[A-Za-z_*][\w\-]*|\[[^\]]*\])*$")

OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "contains", "exists", "matches")


class ExpressionError(Exception):
    """Base of every error that evaluating user-written expressions raises on bad data."""


class ReferenceError_(ExpressionError, KeyError):
    """A reference pointed at nothing and had no default."""


class ConditionError(ExpressionError, ValueError):
    """A condition cannot be evaluated (unknown operator, bad `matches` pattern…)."""


class PatternError(ConditionError):
    """A `matches` pattern is not a valid RE2 expression, too long, or too large to compile."""


class ExpressionLimitError(ReferenceError_):
    """Templates would build more text than the limits allow (a ReferenceError_ so that every
    place resolving params already reports it as a failure of the node)."""


def _setting(name: str, default: int) -> int:
    from django.conf import settings  # read at call time: tests and operators may change them

    return int(getattr(settings, name, default))


def _short(text: str, size: int = 60) -> str:
    return repr(text if len(text) <= size else text[:size] + "…")


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


class TextBudget:
    """How much text one evaluation may still build: each string at most `max_text`
    characters, all of them together at most `total` (settings WB_EXPRESSION_MAX_TEXT and
    WB_EXPRESSION_BUDGET). Sizes are checked before a string is joined."""

    def __init__(self, max_text: int | None = None, total: int | None = None):
        self.max_text = _setting("WB_EXPRESSION_MAX_TEXT", 1_000_000) if max_text is None else max_text
        self.remaining = _setting("WB_EXPRESSION_BUDGET", 10_000_000) if total is None else total

    def room(self) -> int:
        """The longest string that may be built now."""
        return max(0, min(self.max_text, self.remaining))

    def spend(self, size: int, what: str, error: type[Exception]) -> None:
        """Charge `size` characters, or raise `error` naming `what` when they do not fit."""
        if size > self.max_text:
            raise error(f"{what} would be {size:,} characters long, more than the limit of {self.max_text:,}")
        if size > self.remaining:
            raise error(
                f"{what} would take the text built by this evaluation past its budget of "
                f"{_setting('WB_EXPRESSION_BUDGET', 10_000_000):,} characters"
            )
        self.remaining -= size


# The budget shared by everything evaluated inside `text_budget()` (a dry run, a mapping).
_current_budget: ContextVar[TextBudget | None] = ContextVar("expression_text_budget", default=None)


@contextmanager
def text_budget() -> Iterator[TextBudget]:
    """One text budget for every template and mapping evaluated inside (nested calls share the
    outer one): a dry run of many steps builds at most WB_EXPRESSION_BUDGET characters in all."""
    current = _current_budget.get()
    if current is not None:
        yield current
        return
    budget = TextBudget()
    token = _current_budget.set(budget)
    try:
        yield budget
    finally:
        _current_budget.reset(token)


def current_budget() -> TextBudget:
    """The budget of the enclosing `text_budget()`, or a fresh one."""
    return _current_budget.get() or TextBudget()


def _template(match: re.Match | None) -> tuple[str, str | None] | None:
    """(path, raw default or None) of a TEMPLATE_SPAN match that is a template (it reads a $path)."""
    if match is None:
        return None
    path = match.group(1).strip()
    if not path.startswith("$"):
        return None
    return path, None if match.group(2) is None else match.group(2).strip()


def templates_in(value: str) -> Iterator[tuple[re.Match, str, str | None]]:
    """Each `{{ … }}` template in `value`: (its match, path, raw default or None)."""
    for match in TEMPLATE_SPAN.finditer(value):
        found = _template(match)
        if found:
            yield match, *found


def render_string(value: str, context: dict, budget: TextBudget | None = None) -> Any:
    if value.startswith("$") and is_plain_path(value):
        return _lookup(context, value)
    if "{{" not in value:
        return value
    whole = _template(TEMPLATE_SPAN.fullmatch(value.strip()))
    if whole:
        return _lookup(context, whole[0], _default_value(whole[1]))
    budget = budget or current_budget()
    parts: list[str] = []
    size = 0
    last = 0
    for m, path, default in templates_in(value):
        parts.append(value[last : m.start()])
        parts.append(_text(_lookup(context, path, _default_value(default))))
        size += len(parts[-2]) + len(parts[-1])
        last = m.end()
        if size > budget.room():
            break  # the spend below reports it, before anything is joined
    if not parts:
        return value  # braces, but no template: nothing is built
    parts.append(value[last:])
    budget.spend(size + len(parts[-1]), f"the template {_short(value)}", ExpressionLimitError)
    return "".join(parts)


def resolve(value: Any, context: dict, budget: TextBudget | None = None) -> Any:
    """Return `value` with every reference and template resolved against `context`.

    Raises ReferenceError_ for a reference that matches nothing, ExpressionLimitError (a
    ReferenceError_) when the templates would build more text than the limits allow."""
    budget = budget or current_budget()
    if isinstance(value, str):
        return render_string(value, context, budget)
    if isinstance(value, dict):
        return {key: resolve(item, context, budget) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, context, budget) for item in value]
    return value


def references_in(value: Any) -> list[str]:
    """Every JSONPath that `value` refers to (for the validator)."""
    found: list[str] = []
    if isinstance(value, str):
        if value.startswith("$") and " " not in value:
            found.append(value)
        found.extend(path for _, path, _ in templates_in(value))
    elif isinstance(value, dict):
        for item in value.values():
            found.extend(references_in(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(references_in(item))
    return found


#
# Regular expressions (`matches`)
#


@lru_cache(maxsize=512)
def _compile(pattern: str, max_length: int, max_memory: int) -> Any:
    if len(pattern) > max_length:
        raise PatternError(
            f"matches: the pattern {_short(pattern)} is {len(pattern):,} characters long, more than the limit of "
            f"{max_length:,}"
        )
    options = re2.Options()
    options.max_mem = max_memory
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if "too large" in reason:
            reason = "it is too large to compile within the memory limit"
        raise PatternError(
            f"matches: {_short(pattern)} is not a valid regular expression: {reason} (RE2 syntax: no "
            "backreferences or lookaround)"
        ) from None
    except UnicodeError:
        raise PatternError(f"matches: {_short(pattern)} is not valid Unicode text") from None


def compile_pattern(pattern: Any) -> Any:
    """The compiled RE2 regex for a `matches` value; PatternError (a ConditionError) naming the
    pattern when it is not a string, too long, invalid, or too large."""
    if isinstance(pattern, bool) or not isinstance(pattern, (str, int, float)):
        raise PatternError(
            f"matches: the pattern must be a string, not {type(pattern).__name__ if pattern is not None else 'null'}"
        )
    return _compile(str(pattern), _setting("WB_REGEX_MAX_LENGTH", 1000), _setting("WB_REGEX_MAX_MEMORY", 8 << 20))


def search(pattern: Any, text: str) -> bool:
    """Whether `pattern` is found in `text`, in time linear in the text's length; ConditionError
    when the pattern is bad or the text longer than WB_REGEX_MAX_TEXT."""
    regex = compile_pattern(pattern)
    limit = _setting("WB_REGEX_MAX_TEXT", 1_000_000)
    if len(text) > limit:
        raise ConditionError(f"matches: the text is {len(text):,} characters long, more than the limit of {limit:,}")
    try:
        return regex.search(text) is not None
    except UnicodeError:  # lone surrogates (from "\ud800" in JSON) cannot be encoded for RE2
        return regex.search(text.encode("utf-8", "replace").decode("utf-8")) is not None


def pattern_problems(condition: Any, field: str) -> list[tuple[str, str]]:
    """(field, message) for every literal `matches` pattern in `condition` (with all/any/not)
    that does not compile; patterns taken from references are checked when the run reads them."""
    found: list[tuple[str, str]] = []
    if not isinstance(condition, dict):
        return found
    for key in ("all", "any"):
        if isinstance(condition.get(key), list):
            for i, sub in enumerate(condition[key]):
                found.extend(pattern_problems(sub, f"{field}.{key}[{i}]"))
    if "not" in condition:
        found.extend(pattern_problems(condition["not"], f"{field}.not"))
    value = condition.get("value")
    if condition.get("op") == "matches" and "value" in condition and "value_from" not in condition:
        if isinstance(value, str) and ((value.startswith("$") and is_plain_path(value)) or "{{" in value):
            return found
        try:
            compile_pattern(value)
        except PatternError as exc:
            found.append((f"{field}.value", str(exc)))
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
            return isinstance(left, str) and search(right, left)
    except TypeError:
        return False
    raise ConditionError(f"unknown operator {op!r}")


MAX_CONDITION_DEPTH = 32


def evaluate(condition: dict, context: dict, _depth: int = 0) -> bool:
    """Evaluate a declarative condition: {"var", "op", "value" | "value_from"} or all/any/not.

    Raises ConditionError (a malformed condition, a bad path or `matches` pattern, nesting
    deeper than MAX_CONDITION_DEPTH) or ReferenceError_ (a template in `value` that matches
    nothing); nothing else, whatever the condition and the data."""
    if _depth > MAX_CONDITION_DEPTH:
        raise ConditionError(f"conditions nest deeper than {MAX_CONDITION_DEPTH} levels")
    if not isinstance(condition, dict):
        raise ConditionError(
            f'a condition is an object such as {{"var": …, "op": …, "value": …}}, not {type(condition).__name__}'
        )
    for key in ("all", "any"):
        if key in condition:
            items = condition[key]
            if not isinstance(items, list):
                raise ConditionError(f"{key} takes a list of conditions")
            results = (evaluate(c, context, _depth + 1) for c in items)
            return all(results) if key == "all" else any(results)
    if "not" in condition:
        return not evaluate(condition["not"], context, _depth + 1)
    op, var = condition.get("op"), condition.get("var")
    if op not in OPERATORS:
        raise ConditionError(f"unknown operator {op!r}; known: {', '.join(OPERATORS)}")
    if not isinstance(var, str):
        raise ConditionError("var must be a path such as order.total or $.input.x")
    try:
        path = _var_path(var)
        if op == "exists":
            present = jsonpath.exists(context, path)
            return present if condition.get("value", True) else not present
        left = jsonpath.find(context, path, None)
        if "value_from" in condition:
            right = jsonpath.find(context, condition["value_from"], None)
        else:
            right = resolve(condition.get("value"), context)
    except jsonpath.JSONPathError as exc:
        raise ConditionError(str(exc)) from None
    return _compare(op, left, right)
