"""The definition validator, on anything a user (or a script) can send: it reports problems and never
raises; every problem names the node or field it is about; the schemas it accepts never raise on data."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from apps.workflows.definition.validator import DefinitionError, compile_definition, validate

from .strategies import PROPERTY, definitions, json_values


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
@given(definitions)
def test_every_problem_names_a_node_or_a_field(definition):
    problems = validate(definition)
    if not isinstance(definition, dict):
        # The one problem with no place inside the definition: there is no inside.
        assert [p.message for p in problems] == ["the definition must be a JSON object"]
        return
    for problem in problems:
        assert problem.node or problem.field, problem
        assert problem.node is None or isinstance(problem.node, str)
        assert problem.field is None or isinstance(problem.field, str)
        assert str(problem).startswith(("node '", "field '"))


@PROPERTY
@given(definitions)
def test_validation_is_deterministic(definition):
    assert [p.as_dict() for p in validate(definition)] == [p.as_dict() for p in validate(definition)]


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
