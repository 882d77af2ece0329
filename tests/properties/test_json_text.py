"""JSON text from users: parsed or refused with a ValueError; stored values' problems point at a real path."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from apps.workflows import jsontext
from apps.workflows.definition import storable

from .strategies import PROPERTY, json_values


@PROPERTY
@given(st.text(alphabet=st.sampled_from(list('{}[]",:01 ae\\u\x00')), max_size=60) | json_values.map(json.dumps))
def test_json_text_is_parsed_or_refused_with_a_value_error(text):
    try:
        data = jsontext.loads(text)
    except ValueError:
        return
    assert storable.problem(data) is None


@PROPERTY
@given(json_values, st.integers(1, 6))
def test_storable_problems_name_a_path_that_exists_up_to_the_depth_limit(value, limit):
    found = storable.problem_parts(value, limit)
    if found is None:
        json.dumps(value).encode("utf-8")  # storable: it encodes
        return
    parts, message = found
    assert isinstance(message, str)
    inner = value
    for part in parts[:-1]:
        inner = inner[part]
