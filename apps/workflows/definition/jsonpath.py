"""A small, safe JSONPath subset for reading run data.

Supported: `$` root, `.name`, `['name']` / `["name"]`, `[3]`, `[-1]`, `[*]` and `.*`
(wildcards return a list). Nothing here evaluates code: a path is parsed into a
tuple of keys, indexes and wildcards, then walked over plain JSON values.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

WILDCARD = object()
MISSING = object()

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INDEX = re.compile(r"-?\d+")


class JSONPathError(ValueError):
    """The path is not valid syntax; the message says where."""


# Paths of ordinary length are cached; a long one (any "$…" string a user wrote is parsed by the
# validator) is parsed each time, so the cache cannot be filled with megabytes of paths.
CACHED_PATH_LENGTH = 256


def parse(path: str) -> tuple:
    """Parse `path` into a tuple of str keys, int indexes and WILDCARD markers."""
    if isinstance(path, str) and len(path) <= CACHED_PATH_LENGTH:
        return _parse_cached(path)
    return _parse(path)


@lru_cache(maxsize=4096)
def _parse_cached(path: str) -> tuple:
    return _parse(path)


def _parse(path: str) -> tuple:
    if not isinstance(path, str) or not path.startswith("$"):
        raise JSONPathError(f"a JSONPath starts with '$': {path!r}")
    parts: list = []
    i, n = 1, len(path)
    while i < n:
        ch = path[i]
        if ch == ".":
            i += 1
            if i < n and path[i] == "*":
                parts.append(WILDCARD)
                i += 1
                continue
            m = _NAME.match(path, i)
            if not m:
                raise JSONPathError(f"expected a name after '.' at position {i} in {path!r}")
            parts.append(m.group())
            i = m.end()
        elif ch == "[":
            end = path.find("]", i)
            if end < 0:
                raise JSONPathError(f"unclosed '[' at position {i} in {path!r}")
            inner = path[i + 1 : end].strip()
            if inner == "*":
                parts.append(WILDCARD)
            elif _INDEX.fullmatch(inner):
                parts.append(int(inner))
            elif len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
                parts.append(inner[1:-1])
            else:
                raise JSONPathError(f"expected an index, '*' or a quoted name inside [] at position {i} in {path!r}")
            i = end + 1
        else:
            raise JSONPathError(f"unexpected {ch!r} at position {i} in {path!r}")
    return tuple(parts)


def _step(values: list, part) -> list:
    out: list = []
    for value in values:
        if part is WILDCARD:
            if isinstance(value, dict):
                out.extend(value.values())
            elif isinstance(value, list):
                out.extend(value)
        elif isinstance(part, int):
            if isinstance(value, list) and -len(value) <= part < len(value):
                out.append(value[part])
        elif isinstance(value, dict) and part in value:
            out.append(value[part])
    return out


def find(data: Any, path: str, default: Any = MISSING) -> Any:
    """Return the value at `path` in `data`.

    Paths with a wildcard return a list of every match. A path that matches nothing
    returns `default`, or raises KeyError naming the path when no default is given.
    """
    parts = parse(path)
    values = [data]
    has_wildcard = False
    for part in parts:
        has_wildcard = has_wildcard or part is WILDCARD
        values = _step(values, part)
        if not values and not has_wildcard:
            break
    if has_wildcard:
        return values
    if not values:
        if default is MISSING:
            raise KeyError(path)
        return default
    return values[0]


def exists(data: Any, path: str) -> bool:
    try:
        value = find(data, path)
    except KeyError:
        return False
    return value != [] if WILDCARD in parse(path) else True
