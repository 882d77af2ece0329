"""Data mapping: JSONPath picks with defaults and a small set of named functions.

A mapping expression is data, never code:

    "@.user.name"                      JSONPath into the mapping's source ("@" is the source)
    {"path": "@.user.age", "default": 0}
    {"fn": "upper", "args": ["@.user.name"]}        a function of evaluated arguments
    {"value": "@literally"}            a literal (to write a string starting with "@")
    anything else                      itself (the engine has already resolved $.paths
                                       and {{ templates }} in params before the step runs)

Functions (see FUNCTIONS and docs/connectors.md): string upper, lower, trim, replace,
split, join, concat; number round, sum, avg, min, max, to_number; date now, format_date,
parse_date, add_days; list first, last, length, unique, sort, filter; object keys,
values, merge, pick, get.

Mappings are written by users and run in workers and in the web process (dry runs), so
`replace`, `join` and `concat` size their result before building it: one string is at most
WB_EXPRESSION_MAX_TEXT characters and all the strings one `apply` builds at most
WB_EXPRESSION_BUDGET (MappingError otherwise).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from apps.workflows.definition import jsonpath
from apps.workflows.definition.expressions import current_budget, text_budget

MAX_DEPTH = 32
MAX_ITEMS = 100_000


class MappingError(ValueError):
    """A mapping could not be evaluated; the message names the expression."""


def _spend(size: int, fn: str) -> None:
    """Charge a string of `size` characters that `fn` is about to build (MappingError if it
    does not fit the evaluation's text budget); called before the string exists."""
    current_budget().spend(size, "the result", MappingError)


#
# Paths
#


def pick(source: Any, path: str, default: Any = jsonpath.MISSING) -> Any:
    """Read `path` ("@.a.b", "$.a.b" or "a.b") from `source`; default when it matches nothing."""
    if path.startswith("@"):
        path = "$" + path[1:]
    elif path.startswith("["):
        path = "$" + path
    elif not path.startswith("$"):
        path = "$." + path if path else "$"
    try:
        return jsonpath.find(source, path, default)
    except jsonpath.JSONPathError as exc:
        raise MappingError(str(exc)) from None
    except KeyError:
        raise MappingError(f"{path.replace('$', '@', 1)} matched nothing and has no default") from None


#
# Functions
#


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def _number(value: Any) -> float | int:
    if isinstance(value, bool):
        raise MappingError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise MappingError(f"{value!r} is not a number") from None
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    raise MappingError(f"{value!r} is not a number")


def _numbers(values: Any) -> list[float | int]:
    if not isinstance(values, list):
        raise MappingError("expects a list of numbers")
    return [_number(v) for v in values if v is not None]


def _list(value: Any, fn: str) -> list:
    if not isinstance(value, list):
        raise MappingError(f"{fn} expects a list, got {type(value).__name__}")
    return value


def _dict(value: Any, fn: str) -> dict:
    if not isinstance(value, dict):
        raise MappingError(f"{fn} expects an object, got {type(value).__name__}")
    return value


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        dt = datetime.fromtimestamp(value, tz=UTC)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise MappingError(f"{value!r} is not an ISO 8601 date or time (use parse_date with a format)") from None
    else:
        raise MappingError(f"{value!r} is not a date")
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _round(value: Any, digits: Any = 0) -> float | int:
    number = _number(value)
    digits = int(_number(digits))
    result = round(number, digits)
    return int(result) if digits <= 0 else result


def _avg(values: Any) -> float | None:
    numbers = _numbers(values)
    return sum(numbers) / len(numbers) if numbers else None


def _min(values: Any) -> Any:
    numbers = _numbers(values)
    return min(numbers) if numbers else None


def _max(values: Any) -> Any:
    numbers = _numbers(values)
    return max(numbers) if numbers else None


def _replace(text: Any, old: Any, new: Any) -> str:
    text, old, new = _text(text), _text(old), _text(new)
    # str.count("") is len + 1, which is also how many times replace("") inserts `new`.
    _spend(len(text) + text.count(old) * (len(new) - len(old)), "replace")
    return text.replace(old, new)


def _split(text: Any, sep: Any = None) -> list[str]:
    sep_text = None if sep in (None, "") else _text(sep)
    return _text(text).split(sep_text, MAX_ITEMS)[:MAX_ITEMS]  # never more pieces than are kept


def _join(values: Any, sep: Any = ",") -> str:
    values, sep = _list(values, "join"), _text(sep)
    texts = [_text(v) for v in values]  # each at most the size of data that exists already
    _spend(sum(map(len, texts)) + len(sep) * max(0, len(texts) - 1), "join")
    return sep.join(texts)


def _concat(*parts: Any) -> Any:
    if parts and all(isinstance(p, list) for p in parts):
        return [item for p in parts for item in p][:MAX_ITEMS]
    texts = [_text(p) for p in parts]
    _spend(sum(map(len, texts)), "concat")
    return "".join(texts)


def _to_number(value: Any, default: Any = jsonpath.MISSING) -> Any:
    try:
        return _number(value)
    except MappingError:
        if default is jsonpath.MISSING:
            raise
        return default


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _format_date(value: Any, fmt: Any = "%Y-%m-%d") -> str:
    return _datetime(value).strftime(_text(fmt)[:200])


def _parse_date(text: Any, fmt: Any = None) -> str:
    if fmt in (None, ""):
        return _datetime(text).isoformat()
    try:
        dt = datetime.strptime(_text(text), _text(fmt))
    except ValueError as exc:
        raise MappingError(f"parse_date: {exc}") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat()


def _add_days(value: Any, days: Any) -> str:
    try:
        return (_datetime(value) + timedelta(days=float(_number(days)))).isoformat()
    except OverflowError:
        raise MappingError("add_days: the date is out of range") from None


def _first(values: Any) -> Any:
    values = _list(values, "first")
    return values[0] if values else None


def _last(values: Any) -> Any:
    values = _list(values, "last")
    return values[-1] if values else None


def _length(value: Any) -> int:
    if isinstance(value, (list, str, dict)):
        return len(value)
    if value is None:
        return 0
    raise MappingError(f"length expects a list, string or object, got {type(value).__name__}")


def _unique(values: Any) -> list:
    seen: list = []
    keys: set[str] = set()
    for item in _list(values, "unique"):
        key = json.dumps(item, sort_keys=True, default=str)
        if key not in keys:
            keys.add(key)
            seen.append(item)
    return seen


def _field(item: Any, key: Any) -> Any:
    if key in (None, ""):
        return item
    try:
        return pick(item, _text(key), None)
    except MappingError:
        return None


def _sort(values: Any, key: Any = None, order: Any = "asc") -> list:
    values = _list(values, "sort")
    if order not in ("asc", "desc"):
        raise MappingError("sort: order is asc or desc")

    # None sorts first; mixed types sort by type name so sorting never fails halfway.
    def sort_key(item: Any) -> tuple:
        value = _field(item, key)
        if value is None:
            return (0, "", 0)
        if isinstance(value, bool):
            return (1, "bool", int(value))
        if isinstance(value, (int, float)):
            return (1, "number", value)
        if isinstance(value, str):
            return (1, "string", value)
        return (1, type(value).__name__, json.dumps(value, sort_keys=True, default=str))

    return sorted(values, key=sort_key, reverse=order == "desc")


def _filter(values: Any, key: Any, value: Any = True) -> list:
    """Items whose `key` (a field name or "@.path") equals `value`."""
    return [item for item in _list(values, "filter") if _field(item, key) == value]


def _keys(value: Any) -> list:
    return list(_dict(value, "keys"))


def _values(value: Any) -> list:
    return list(_dict(value, "values").values())


def _merge(*objects: Any) -> dict:
    out: dict = {}
    for obj in objects:
        if obj is None:
            continue
        out.update(_dict(obj, "merge"))
    return out


def _pick(value: Any, keys: Any) -> dict:
    obj = _dict(value, "pick")
    wanted = keys if isinstance(keys, list) else [keys]
    return {k: obj[k] for k in wanted if isinstance(k, str) and k in obj}


def _get(value: Any, path: Any, default: Any = None) -> Any:
    return pick(value, _text(path), default)


def _default(value: Any, fallback: Any) -> Any:
    return fallback if value in (None, "", [], {}) else value


# name -> (function, signature, description, example)
FUNCTIONS: dict[str, tuple[Callable[..., Any], str, str, dict]] = {
    # strings
    "upper": (lambda s: _text(s).upper(), "upper(text)", "Upper-case text.", {"fn": "upper", "args": ["ada"]}),
    "lower": (lambda s: _text(s).lower(), "lower(text)", "Lower-case text.", {"fn": "lower", "args": ["ADA"]}),
    "trim": (
        lambda s, chars=None: _text(s).strip(None if chars is None else _text(chars)),
        "trim(text, chars?)",
        "Strip whitespace (or the given characters) at both ends.",
        {"fn": "trim", "args": ["  ada "]},
    ),
    "replace": (
        _replace,
        "replace(text, old, new)",
        "Replace every occurrence of old by new.",
        {"fn": "replace", "args": ["a-b-c", "-", "/"]},
    ),
    "split": (
        _split,
        "split(text, separator?)",
        "Split text into a list (on whitespace by default).",
        {"fn": "split", "args": ["a,b", ","]},
    ),
    "join": (
        _join,
        "join(list, separator?)",
        "Join a list into text (comma by default).",
        {"fn": "join", "args": [["a", "b"], " + "]},
    ),
    "concat": (
        _concat,
        "concat(a, b, ...)",
        "Concatenate texts, or lists when every argument is a list.",
        {"fn": "concat", "args": ["order-", 42]},
    ),
    # numbers
    "round": (
        _round,
        "round(number, digits?)",
        "Round to the given number of decimals (0 by default).",
        {"fn": "round", "args": [3.14159, 2]},
    ),
    "sum": (
        lambda v: sum(_numbers(v)),
        "sum(list)",
        "Sum of numbers (nulls ignored).",
        {"fn": "sum", "args": [[1, 2, 3]]},
    ),
    "avg": (_avg, "avg(list)", "Mean of numbers, null for an empty list.", {"fn": "avg", "args": [[1, 2, 3]]}),
    "min": (_min, "min(list)", "Smallest number, null for an empty list.", {"fn": "min", "args": [[3, 1, 2]]}),
    "max": (_max, "max(list)", "Largest number, null for an empty list.", {"fn": "max", "args": [[3, 1, 2]]}),
    "to_number": (
        _to_number,
        "to_number(value, default?)",
        "Text to number; the default when it is not one.",
        {"fn": "to_number", "args": ["42"]},
    ),
    # dates
    "now": (_now, "now()", "The current time, ISO 8601 in UTC.", {"fn": "now", "args": []}),
    "format_date": (
        _format_date,
        "format_date(date, format?)",
        "Format an ISO date or time with strftime codes (%Y-%m-%d by default).",
        {"fn": "format_date", "args": ["2025-03-01T10:00:00Z", "%d %b %Y"]},
    ),
    "parse_date": (
        _parse_date,
        "parse_date(text, format?)",
        "Parse text (ISO 8601, or with strptime codes) into an ISO 8601 time.",
        {"fn": "parse_date", "args": ["01/03/2025", "%d/%m/%Y"]},
    ),
    "add_days": (
        _add_days,
        "add_days(date, days)",
        "Add (or subtract) days to a date or time.",
        {"fn": "add_days", "args": ["2025-03-01", 30]},
    ),
    # lists
    "first": (_first, "first(list)", "First item (null when empty).", {"fn": "first", "args": [[1, 2]]}),
    "last": (_last, "last(list)", "Last item (null when empty).", {"fn": "last", "args": [[1, 2]]}),
    "length": (
        _length,
        "length(list | text | object)",
        "Number of items or characters.",
        {"fn": "length", "args": [[1, 2]]},
    ),
    "unique": (
        _unique,
        "unique(list)",
        "Drop repeated items, keeping the first of each.",
        {"fn": "unique", "args": [[1, 1, 2]]},
    ),
    "sort": (
        _sort,
        "sort(list, key?, order?)",
        "Sort items, by a field (name or @.path) when given; order asc or desc.",
        {"fn": "sort", "args": [[{"n": 2}, {"n": 1}], "n"]},
    ),
    "filter": (
        _filter,
        "filter(list, key, value)",
        "Items whose field equals value.",
        {"fn": "filter", "args": [[{"s": "open"}, {"s": "done"}], "s", "open"]},
    ),
    # objects
    "keys": (_keys, "keys(object)", "The object's keys.", {"fn": "keys", "args": [{"a": 1}]}),
    "values": (_values, "values(object)", "The object's values.", {"fn": "values", "args": [{"a": 1}]}),
    "merge": (
        _merge,
        "merge(a, b, ...)",
        "Shallow merge of objects; later ones win.",
        {"fn": "merge", "args": [{"a": 1}, {"b": 2}]},
    ),
    "pick": (
        _pick,
        "pick(object, keys)",
        "Only the given keys of an object.",
        {"fn": "pick", "args": [{"a": 1, "b": 2}, ["a"]]},
    ),
    "get": (
        _get,
        "get(value, path, default?)",
        "Read a path (name, a.b or @.a[0]) from a value.",
        {"fn": "get", "args": [{"a": {"b": 1}}, "a.b"]},
    ),
    "default": (
        _default,
        "default(value, fallback)",
        "The fallback when value is null or empty.",
        {"fn": "default", "args": [None, "n/a"]},
    ),
}


def function_catalogue() -> list[dict]:
    """Name, signature, description and an example of every mapping function (for docs and agents)."""
    return [
        {"name": name, "signature": sig, "description": desc, "example": example}
        for name, (_, sig, desc, example) in FUNCTIONS.items()
    ]


#
# Evaluation
#


def evaluate(expr: Any, source: Any, _depth: int = 0) -> Any:
    """Evaluate one mapping expression against `source` (see the module docstring); raises
    MappingError and nothing else, whatever the expression and the source."""
    if _depth == 0:
        with text_budget():
            return _evaluate(expr, source, 0)
    return _evaluate(expr, source, _depth)


def _evaluate(expr: Any, source: Any, _depth: int) -> Any:
    if _depth > MAX_DEPTH:
        raise MappingError(f"expressions nest deeper than {MAX_DEPTH} levels")
    if isinstance(expr, str):
        if expr.startswith("@"):
            return pick(source, expr)
        return expr
    if isinstance(expr, dict):
        if "fn" in expr:
            extra = set(expr) - {"fn", "args"}
            if extra:
                raise MappingError(f"a function call has only fn and args, not {', '.join(sorted(extra))}")
            name = expr["fn"]
            if not isinstance(name, str) or name not in FUNCTIONS:
                raise MappingError(f"unknown function {name!r}; known: {', '.join(FUNCTIONS)}")
            args = expr.get("args", [])
            if not isinstance(args, list):
                args = [args]
            values = [evaluate(arg, source, _depth + 1) for arg in args]
            fn = FUNCTIONS[name][0]
            try:
                result = fn(*values)
            except MappingError as exc:
                raise MappingError(f"{name}: {exc}") from None
            except TypeError as exc:
                raise MappingError(f"{name}: wrong arguments ({FUNCTIONS[name][1]}): {exc}") from None
            except (ValueError, ArithmeticError, OSError) as exc:  # e.g. round(1, 1e300), a date out of range
                raise MappingError(f"{name}: {exc}") from None
            if isinstance(result, float) and not math.isfinite(result):
                raise MappingError(f"{name}: the result is not a finite number")
            return result
        if "path" in expr and set(expr) <= {"path", "default"}:
            path = expr["path"]
            if not isinstance(path, str):
                raise MappingError("path must be a string such as @.user.name")
            return pick(source, path, expr["default"] if "default" in expr else jsonpath.MISSING)
        if set(expr) == {"value"}:
            return expr["value"]
        return {key: evaluate(value, source, _depth + 1) for key, value in expr.items()}
    if isinstance(expr, list):
        return [evaluate(item, source, _depth + 1) for item in expr]
    return expr


def apply(mapping: dict, source: Any) -> dict:
    """Evaluate every `name: expression` of `mapping` within one text budget; errors name the entry."""
    out: dict[str, Any] = {}
    with text_budget():
        for name, expr in mapping.items():
            try:
                out[name] = evaluate(expr, source)
            except MappingError as exc:
                raise MappingError(f"'{name}': {exc}") from None
    return out


EXPRESSION_SCHEMA: dict = {
    "description": "A mapping expression: '@.path' into the source, {path, default}, {fn, args}, {value}, or a "
    "literal.",
}
