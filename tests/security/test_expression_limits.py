"""Strings built by mapping functions and templates are sized before they are built (issue 15):
a 9 KB request no longer returns 2 MB, a 205 KB expression no longer builds 50 MB."""

from __future__ import annotations

import json

import pytest

from apps.workflows.definition import expressions, mapping


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.WB_EXPRESSION_MAX_TEXT = 10_000
    settings.WB_EXPRESSION_BUDGET = 50_000


@pytest.mark.parametrize(
    "expr, fn",
    [
        ({"fn": "join", "args": [["a"] * 100, "x" * 200]}, "join"),
        ({"fn": "replace", "args": ["a" * 200, "a", "b" * 100]}, "replace"),
        ({"fn": "replace", "args": ["a" * 5000, "", "--"]}, "replace"),
        ({"fn": "concat", "args": ["x" * 6000, "y" * 6000]}, "concat"),
    ],
)
def test_a_string_over_the_limit_is_a_mapping_error_naming_the_function(expr, fn):
    with pytest.raises(mapping.MappingError, match=rf"^{fn}: the result would be [\d,]+ characters long, more than the limit of 10,000$"):
        mapping.evaluate(expr, {})


def test_strings_within_the_limit_are_built_as_before():
    assert mapping.evaluate({"fn": "replace", "args": ["abc", "", "-"]}, {}) == "-a-b-c-"
    assert mapping.evaluate({"fn": "join", "args": [["a", "b"], "--"]}, {}) == "a--b"
    assert mapping.evaluate({"fn": "concat", "args": ["a", 1, None]}, {}) == "a1"


def test_one_mapping_shares_one_budget_and_names_the_entry():
    entry = {"fn": "join", "args": [["a"] * 90, "x" * 100]}  # about 9,000 characters each
    with pytest.raises(mapping.MappingError, match=r"^'k5': join: the result would take the text built by this evaluation past its budget of 50,000 characters$"):
        mapping.apply({f"k{i}": entry for i in range(10)}, {})
    assert len(mapping.apply({f"k{i}": entry for i in range(5)}, {})) == 5


def test_templates_are_sized_before_they_are_joined():
    context = {"input": {"big": "x" * 6000}}
    with pytest.raises(expressions.ReferenceError_, match="would be 12,001 characters long"):
        expressions.resolve("{{ $.input.big }}-{{ $.input.big }}", context)
    with pytest.raises(expressions.ExpressionLimitError, match="budget of 50,000"):
        expressions.resolve({f"p{i}": "<{{ $.input.big }}>" for i in range(20)}, context)
    assert expressions.resolve("$.input.big", context) == "x" * 6000  # a reference copies nothing


def test_a_dry_run_shares_one_budget_across_its_steps_and_fails_the_step(db, api):
    definition = {
        "format_version": 1,
        "nodes": [
            {"id": "each", "type": "loop", "mode": "for_each", "items": "$.input.items", "body": {"nodes": [
                {"id": "grow", "type": "activity", "activity": "map", "params": {"source": "$.input", "values": {"s": {"fn": "join", "args": ["@.words", "@.sep"]}}}},
            ]}},
        ],
        "edges": [],
    }
    request = {"definition": definition, "input": {"items": list(range(50)), "words": ["w"] * 90, "sep": "y" * 100}}
    response = api.post("/api/v1/ai/test", request, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "failed"
    failed = [s for s in body["steps"] if s["status"] == "failed"]
    assert failed and "budget of 50,000" in json.dumps(failed[0]["error"])
    assert len(response.content) < 200_000  # the answer stays small: the budget bounds what was built


def test_an_unclosed_template_with_a_long_tail_is_plain_text_for_the_resolver_and_the_validator():
    # The old one-regex template syntax backtracked quadratically on this (13 s to resolve, 20 s
    # to validate, in the web process).
    from apps.workflows.definition.validator import validate

    text = "{{$" + " " * 20_000
    assert expressions.resolve(text, {}) == text
    assert expressions.references_in(text) == []
    definition = {"format_version": 1, "nodes": [{"id": "log", "type": "activity", "activity": "log", "params": {"message": text}}], "edges": []}
    assert validate(definition) == []
    assert expressions.resolve("{{{ $.input.a }} {{ foo }} {{ $.input.b | 7 }}", {"input": {"a": 1}}) == "{1 {{ foo }} 7"


def test_an_unclosed_model_fence_and_unterminated_strings_are_read_once():
    from apps.connectors.llm import parse_json
    from apps.workflows import jsontext

    with pytest.raises(ValueError, match="not JSON"):
        parse_json("```" + " " * 30_000)
    assert parse_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert jsontext.deep_path("[" * 100 + '"' * 100_000, 80).startswith("[0]")


def test_only_ordinary_sized_definitions_are_kept_in_the_plan_cache():
    from apps.workflows.definition.validator import PLAN_CACHE_MAX_TEXT, _compile_cached, compile_definition

    def definition(text: str) -> dict:
        return {"format_version": 1, "nodes": [{"id": "log", "type": "activity", "activity": "log", "params": {"message": text}}], "edges": []}

    _compile_cached.cache_clear()
    assert compile_definition(definition("small")) is compile_definition(definition("small"))
    big = compile_definition(definition("x" * PLAN_CACHE_MAX_TEXT))
    assert big.nodes["log"].spec["params"]["message"] == "x" * PLAN_CACHE_MAX_TEXT
    assert _compile_cached.cache_info().currsize == 1


def test_long_paths_are_parsed_but_not_kept_in_the_path_cache():
    from apps.workflows.definition import jsonpath

    long_path = "$.input" + ".a" * 1000
    before = jsonpath._parse_cached.cache_info().currsize
    assert jsonpath.find({"input": {}}, long_path, None) is None
    assert jsonpath.parse(long_path) == ("input", *["a"] * 1000)
    assert jsonpath._parse_cached.cache_info().currsize == before
