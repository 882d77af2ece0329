"""JSONPath on any data and any path: only JSONPathError (a bad path) or KeyError (no match) escape,
and a path written to a value that is there finds exactly that value."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from apps.workflows.definition import jsonpath

from .strategies import PROPERTY, json_values, paths


@PROPERTY
@given(json_values, paths)
def test_jsonpath_raises_only_its_documented_errors(data, path):
    try:
        jsonpath.find(data, path)
    except (jsonpath.JSONPathError, KeyError):
        pass
    try:
        jsonpath.exists(data, path)
    except jsonpath.JSONPathError:
        pass


def _quoted(key: str) -> str | None:
    """`key` as a bracketed JSONPath name, or None when the syntax cannot spell it (it has a ']' or both quotes)."""
    if "]" in key:
        return None
    if "'" not in key:
        return f"['{key}']"
    if '"' not in key:
        return f'["{key}"]'
    return None


@st.composite
def value_and_path(draw) -> tuple[Any, str, Any]:
    """Some data, a path to one of the values inside it, and that value."""
    data = draw(json_values)
    path, inner = "$", data
    while isinstance(inner, (dict, list)) and inner and draw(st.booleans()):
        if isinstance(inner, list):
            index = draw(st.integers(-len(inner), len(inner) - 1))
            path, inner = path + f"[{index}]", inner[index]
        else:
            key = draw(st.sampled_from(sorted(inner)))
            spelled = _quoted(key)
            if spelled is None:
                break
            path, inner = path + spelled, inner[key]
    return data, path, inner


@PROPERTY
@given(value_and_path())
def test_a_path_to_a_value_finds_that_value(case):
    data, path, value = case
    assert jsonpath.find(data, path) == value
    assert jsonpath.exists(data, path)


@PROPERTY
@given(json_values, paths)
def test_exists_agrees_with_find(data, path):
    assume("*" not in path)
    try:
        jsonpath.find(data, path)
    except jsonpath.JSONPathError:
        return
    except KeyError:
        assert not jsonpath.exists(data, path)
        return
    assert jsonpath.exists(data, path)
