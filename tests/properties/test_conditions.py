"""Conditions and templates on any input: only ConditionError and ReferenceError_ escape, and all / any /
not combine their parts as the words say."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from apps.workflows.definition import expressions

from .strategies import PROPERTY, conditions, contexts, hostile_text, json_values


@PROPERTY
@given(conditions, contexts)
def test_conditions_raise_only_condition_and_reference_errors(condition, context):
    try:
        assert expressions.evaluate(condition, context) in (True, False)
    except (expressions.ConditionError, expressions.ReferenceError_):
        pass


@PROPERTY
@given(json_values | hostile_text, contexts)
def test_templates_raise_only_reference_errors(value, context):
    try:
        expressions.resolve(value, context)
    except expressions.ReferenceError_:
        pass


def _outcome(condition, context) -> bool | None:
    """True or False, or None when the condition raises one of its documented errors."""
    try:
        return expressions.evaluate(condition, context)
    except (expressions.ConditionError, expressions.ReferenceError_):
        return None


@PROPERTY
@given(st.lists(conditions, min_size=1, max_size=3), contexts)
def test_all_any_and_not_combine_their_parts(parts, context):
    outcomes = [_outcome(part, context) for part in parts]
    if None in outcomes:
        return
    assert _outcome({"all": parts}, context) is all(outcomes)
    assert _outcome({"any": parts}, context) is any(outcomes)
    assert _outcome({"not": parts[0]}, context) is (not outcomes[0])
