"""Whether a JSON value can be stored and walked safely: depth, NUL characters, surrogates.

PostgreSQL's jsonb refuses "\\u0000" in any string or key, psycopg cannot encode a lone
surrogate ("\\ud800"), and values nested hundreds of levels deep exhaust Python's recursion
in the validator, the template resolver or json.dumps. So definitions, run inputs, signal
payloads and every JSON request body are checked here first, and a problem is reported with
the path of the value at fault ("nodes[0].params.text"), never as a server error.
"""

from __future__ import annotations

from typing import Any


def max_depth() -> int:
    """How deeply a stored document (definition, input, payload) may nest: WB_JSON_MAX_DEPTH."""
    from django.conf import settings  # read at call time so tests and operators may change it

    return int(getattr(settings, "WB_JSON_MAX_DEPTH", 64))


def join_path(path: str, part: str | int) -> str:
    """`nodes` + 0 -> `nodes[0]`; `nodes[0]` + `id` -> `nodes[0].id` (the validator's field style)."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def short_path(parts: list[str | int], keep: int = 6) -> str:
    """The path of `parts`, its middle elided when it is long (a 10,000-level path is no help)."""
    if len(parts) > keep + 3:
        tail = "".join(join_path("_", part)[1:] for part in parts[-2:])
        return f"{short_path(parts[:keep], keep)}…({len(parts) - keep - 2} more)…{tail}"
    path = ""
    for part in parts:
        path = join_path(path, part)
    return path


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored; remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (such as \\ud800), which is not valid Unicode text"
    return None


def problem(value: Any, depth_limit: int | None = None, prefix: str = "") -> tuple[str, str] | None:
    """The first place where `value` cannot be stored: (path, message), the path in the
    validator's style and starting with `prefix`; None when all of it can.

    Walks iteratively (no recursion), so a value nested 10,000 levels deep is reported, not
    crashed on."""
    found = problem_parts(value, depth_limit)
    if found is None:
        return None
    parts, message = found
    return short_path([prefix, *parts] if prefix else parts), message


def problem_parts(value: Any, depth_limit: int | None = None) -> tuple[list[str | int], str] | None:
    """As `problem`, with the path as a list of keys and indexes."""
    limit = max_depth() if depth_limit is None else depth_limit
    # (value, path parts, depth of the containers around it)
    stack: list[tuple[Any, list[str | int], int]] = [(value, [], 0)]
    while stack:
        item, parts, depth = stack.pop()
        if isinstance(item, str):
            message = _text_problem(item)
            if message:
                return parts, message
        elif isinstance(item, (dict, list)):
            if depth + 1 > limit:
                return parts, f"nests deeper than {limit} levels of objects and lists"
            if isinstance(item, dict):
                children = []
                for key, child in item.items():
                    if isinstance(key, str):
                        message = _text_problem(key)
                        if message:
                            shown = key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
                            return [*parts, shown], f"the key {message}"
                    children.append((child, [*parts, str(key)], depth + 1))
                stack.extend(reversed(children))
            else:
                stack.extend((child, [*parts, i], depth + 1) for i, child in reversed(list(enumerate(item))))
    return None
