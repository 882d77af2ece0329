"""Parse JSON typed or sent by people (forms, uploads, API bodies) the way PostgreSQL's jsonb
will store it.

Python's json module accepts NaN, Infinity and numbers too large for a float (1e400 becomes inf);
jsonb refuses all three, so letting them through turns a typo into a server error on save. It
also raises RecursionError on a few thousand levels of nesting, and accepts "\\u0000" and lone
surrogates that jsonb refuses: `loads` reports each of these as a JSONInputError naming the
place, and nothing is stored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django import forms

from apps.workflows.definition import storable

# Request bodies and files wrap a document in a few levels of their own ({"definition": …},
# an export's {"workflows": [{"definition": …}]}): the document's own limit is checked where
# it is used (validator, run input), with a message naming the node and field.
ENVELOPE_DEPTH = 16


class JSONInputError(ValueError):
    """JSON that cannot be accepted; `field` is the path of the value at fault ("" for the
    whole text)."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large a number")
    return value


def parse_depth_limit() -> int:
    return storable.max_depth() + ENVELOPE_DEPTH


# A string token ends at its closing quote or at the end of the text, so it always matches once
# started: a text of unterminated strings is scanned once, not once per quote.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.?)*(?:"|\Z)(\s*:)?|[\[\]{},]', re.S)


def deep_path(text: str, limit: int) -> str | None:
    """Where `text` first nests deeper than `limit` (None when it does not), read without
    recursion (the json module cannot tell: it gives up with RecursionError)."""
    # One frame per open container: [kind, current key or index, the part that leads to it].
    frames: list[list] = []
    for m in _TOKEN.finditer(text):
        token = m.group()
        if token in "[{":
            if frames:
                parent = frames[-1]
                frames.append([token, None if token == "{" else 0, parent[1] if parent[1] is not None else "?"])
            else:
                frames.append([token, None if token == "{" else 0, None])
            if len(frames) > limit:
                return storable.short_path([f[2] for f in frames[1:]])
        elif token in "]}":
            if frames:
                frames.pop()
        elif token == ",":
            if frames:
                frames[-1][1] = frames[-1][1] + 1 if frames[-1][0] == "[" else None
        elif m.group(1) and frames and frames[-1][0] == "{":  # an object key
            try:
                frames[-1][1] = json.loads(token[: token.rindex('"') + 1])
            except ValueError:
                frames[-1][1] = "?"
    return None


def loads(text: str | bytes, *, depth_limit: int | None = None) -> Any:
    """json.loads that rejects NaN, Infinity and out-of-range numbers (ValueError, as json does),
    and JSONInputError (a ValueError) naming the place for nesting deeper than `depth_limit`
    (WB_JSON_MAX_DEPTH plus an envelope by default), "\u0000" and lone surrogates."""
    limit = parse_depth_limit() if depth_limit is None else depth_limit
    try:
        data = json.loads(text, parse_constant=_constant, parse_float=_finite)
    except RecursionError:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        raise JSONInputError(
            deep_path(text, limit) or "", f"nests deeper than {limit} levels of objects and lists"
        ) from None
    problem = storable.problem(data, limit)
    if problem:
        raise JSONInputError(*problem)
    return data


#
# Forms
#


class JSONFormField(forms.JSONField):
    """Django's form JSONField with the checks of `loads`: the admin's JSON textareas (definitions,
    trigger conditions, inputs…) answer with a form error, not a RecursionError or a DataError."""

    def to_python(self, value: Any) -> Any:
        if (
            self.disabled
            or value in self.empty_values
            or isinstance(value, (list, dict, int, float, forms.fields.JSONString))
        ):
            return super().to_python(value)
        try:
            converted = loads(value)
        except ValueError as exc:
            raise forms.ValidationError(f"Enter a valid JSON: {exc}", code="invalid") from None
        return forms.fields.JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        try:
            return loads(data)
        except ValueError:
            return forms.fields.InvalidJSONInput(data)
