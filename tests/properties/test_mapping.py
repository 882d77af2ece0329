"""Mapping expressions on any source: only MappingError escapes; literals and paths mean what they say."""

from __future__ import annotations

from hypothesis import given

from apps.workflows.definition import mapping

from .strategies import PROPERTY, json_values, mapping_exprs


@PROPERTY
@given(mapping_exprs, json_values)
def test_mapping_raises_only_mapping_errors(expr, source):
    try:
        mapping.evaluate(expr, source)
    except mapping.MappingError:
        pass


@PROPERTY
@given(json_values, json_values)
def test_a_value_is_returned_as_written(value, source):
    assert mapping.evaluate({"value": value}, source) == value


@PROPERTY
@given(json_values)
def test_at_is_the_whole_source(source):
    assert mapping.evaluate("@", source) == source
    assert mapping.evaluate({"path": "@"}, source) == source
