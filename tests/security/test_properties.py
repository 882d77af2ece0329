"""Property-based tests (hypothesis): whatever a user writes into a definition, a condition, a
path or a mapping, and whatever the run data is, these functions raise only their documented
errors, never TypeError, AttributeError, RecursionError or a regex engine's own error."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.workflows import jsontext
from apps.workflows.definition import expressions, jsonpath, mapping, storable
from apps.workflows.definition.validator import DefinitionError, compile_definition, validate

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#
# Strategies
#

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
hostile_text = st.text(alphabet=st.sampled_from(list("$.[]*'\"0123456789-_aZ {}|()+?\\^\x00\ud800")), max_size=30)
paths = hostile_text | st.builds(lambda parts: "$" + "".join(parts), st.lists(st.sampled_from([".input", ".vars", ".x", "[0]", "[-1]", "[*]", ".*", "['a b']", "[", ".", "[x]"]), max_size=5))
ops = st.sampled_from([*expressions.OPERATORS, "between", "", None, 3])


def _leaf_condition():
    return st.fixed_dictionaries(
        {"var": paths | st.sampled_from(["order.total", "a", ""]) | scalars, "op": ops},
        optional={"value": json_values | hostile_text | st.sampled_from(["(a+)+$", "(", r"(a)\1", "{{ $.input.x }}", "$.input.x"]), "value_from": paths},
    )


conditions = st.recursive(
    _leaf_condition() | json_values,
    lambda inner: st.fixed_dictionaries({"all": st.lists(inner, max_size=3)}) | st.fixed_dictionaries({"any": st.lists(inner, max_size=3)}) | st.fixed_dictionaries({"not": inner}) | st.fixed_dictionaries({"all": inner}),
    max_leaves=8,
)
contexts = st.fixed_dictionaries({"input": json_values, "vars": json_values})

mapping_exprs = st.recursive(
    json_values | hostile_text | st.sampled_from(["@", "@.a", "@.a[0]", "@[", "@.*", "@..x"]),
    lambda inner: st.fixed_dictionaries({"fn": st.sampled_from([*mapping.FUNCTIONS, "nope"]) | scalars}, optional={"args": st.lists(inner, max_size=4) | inner})
    | st.fixed_dictionaries({"path": inner}, optional={"default": inner})
    | st.fixed_dictionaries({"value": inner})
    | st.lists(inner, max_size=3),
    max_leaves=10,
)

node_types = st.sampled_from(["activity", "condition", "parallel", "loop", "dynamic", "child_workflow", "signal_wait", "approval", "timer", "nope"])
nodes = st.fixed_dictionaries(
    {"id": st.sampled_from(["a", "b", "c", "", "1x"]) | scalars, "type": node_types | scalars},
    optional={
        "activity": st.sampled_from(["set", "noop", "map", "http.request", "log", "nope"]) | scalars,
        "params": json_values,
        "cases": st.lists(st.fixed_dictionaries({"when": conditions, "to": st.sampled_from(["a", "b", "zz"]) | scalars}), max_size=2) | json_values,
        "default": st.sampled_from(["a", "b"]) | scalars,
        "condition": conditions,
        "mode": st.sampled_from(["for_each", "while", "until", "execute", "start"]) | scalars,
        "items": paths | json_values,
        "body": st.fixed_dictionaries({"nodes": st.lists(st.fixed_dictionaries({"id": st.sampled_from(["d", "e"]), "type": node_types}), max_size=2)}) | json_values,
        "branches": json_values,
        "on_error": st.sampled_from(["a", "b", "c"]) | scalars,
        "output": st.text(max_size=5) | scalars,
        "duration": json_values | paths,
        "signal": st.text(max_size=5),
    },
)
definitions = st.fixed_dictionaries(
    {"format_version": st.just(1) | scalars, "nodes": st.lists(nodes, max_size=4) | json_values},
    optional={"edges": st.lists(st.fixed_dictionaries({"from": st.sampled_from(["a", "b", "c"]) | scalars, "to": st.sampled_from(["a", "b", "c"]) | scalars}), max_size=3) | json_values, "signals": json_values, "input_schema": json_values, "output": json_values | paths, "variables": json_values},
) | json_values


#
# Properties
#


@PROPERTY
@given(definitions)
def test_the_validator_reports_problems_and_never_raises(definition):
    problems = validate(definition)
    assert all(isinstance(p.message, str) for p in problems)
    if isinstance(definition, dict):
        try:
            compile_definition(definition)
        except DefinitionError as exc:
            assert exc.problems
        else:
            assert problems == []


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


@PROPERTY
@given(mapping_exprs, json_values)
def test_mapping_raises_only_mapping_errors(expr, source):
    try:
        mapping.evaluate(expr, source)
    except mapping.MappingError:
        pass


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


schema_keywords = st.recursive(
    st.fixed_dictionaries({}, optional={"type": st.sampled_from(["object", "string", "array", "integer"]), "pattern": st.sampled_from(["(a+)+$", "^x", "(", r"(a)\1", "a{2,}"]), "minLength": st.integers(0, 3), "$ref": st.sampled_from(["#", "#/$defs/a", "#/nope", "other.json"])}),
    lambda inner: st.fixed_dictionaries({}, optional={
        "properties": st.dictionaries(st.sampled_from(["a", "b", "x"]), inner, max_size=2),
        "patternProperties": st.dictionaries(st.sampled_from(["^a", "(", "x+x+y"]), inner, max_size=2),
        "additionalProperties": inner | st.booleans(),
        "items": inner,
        "allOf": st.lists(inner, max_size=2),
        "$defs": st.fixed_dictionaries({"a": inner}),
        "unevaluatedProperties": st.booleans(),
    }),
    max_leaves=6,
)


@PROPERTY
@given(schema_keywords, json_values)
def test_a_schema_the_validator_accepts_never_raises_on_data(schema, data):
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    from apps.workflows.definition import userschema
    from apps.workflows.definition.validator import first_data_error

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return
    if userschema.schema_problems(schema):
        return
    found = first_data_error(schema, data)
    assert found is None or isinstance(found[1], str)
