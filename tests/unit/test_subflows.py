"""Subflow inlining in the compiler: ids namespaced, references and targets renamed, edges into
and out of the node rewired, unknown subflows and versions named, nesting, pinned versions."""

from __future__ import annotations

import pytest

from apps.workflows.definition import subflows
from apps.workflows.definition.validator import compile_definition, validate

CHECK = {
    "nodes": [
        {"id": "score", "type": "activity", "activity": "set", "params": {"values": {"score": "$.vars.amount"}}},
        {"id": "big", "type": "condition", "cases": [{"when": {"var": "score", "op": "gt", "value": 100}, "to": "flag"}], "default": "pass"},
        {"id": "flag", "type": "activity", "activity": "log", "params": {"message": "flag {{ $.steps.score.output.score }}"}},
        {"id": "pass", "type": "activity", "activity": "noop", "params": {}},
    ],
    "edges": [{"from": "score", "to": "big"}],
    "result": "$.steps.score.output",
}
GRAPHS = {("check", 1): CHECK, ("check", 2): {"nodes": [{"id": "only", "type": "activity", "activity": "noop", "params": {"value": 2}}], "result": "$.steps.only.output"}}


@pytest.fixture(autouse=True)
def resolver():
    def resolve(slug, version):
        if (slug, version) in GRAPHS:
            return GRAPHS[(slug, version)]
        known = [v for s, v in GRAPHS if s == slug]
        return ("version", f"subflow '{slug}' has versions 1 to {max(known)}, not {version}") if known else ("subflow", f"there is no subflow '{slug}'")

    subflows.set_resolver(resolve)
    yield
    from apps.workflows.subflows import register

    register()


def parent(**node) -> dict:
    return {
        "format_version": 1,
        "nodes": [
            {"id": "prep", "type": "activity", "activity": "noop", "params": {}},
            {"id": "kyc", "type": "subflow", "subflow": "check", "version": 1, "with": {"amount": "$.input.amount"}, "output": "kyc", **node},
            {"id": "after", "type": "activity", "activity": "log", "params": {"message": "{{ $.steps.kyc.output.score }}"}},
        ],
        "edges": [{"from": "prep", "to": "kyc"}, {"from": "kyc", "to": "after"}],
    }


def test_it_inlines_the_sub_graph_with_namespaced_ids():
    plan = compile_definition(parent())
    assert list(plan.root.node_ids) == ["prep", "kyc__start", "kyc__score", "kyc__big", "kyc__flag", "kyc__pass", "kyc", "after"]
    assert plan.node("prep").successors == ["kyc__start"]
    assert plan.node("kyc__start").spec["params"] == {"values": {"amount": "$.input.amount"}}
    assert plan.node("kyc__score").successors == ["kyc__big"]
    assert sorted(plan.node("kyc__big").successors) == ["kyc__flag", "kyc__pass"]
    assert plan.node("kyc__flag").spec["params"]["message"] == "flag {{ $.steps.kyc__score.output.score }}"
    assert plan.node("kyc__flag").successors == ["kyc"] and plan.node("kyc__pass").successors == ["kyc"]
    assert plan.node("kyc").spec["params"] == {"value": "$.steps.kyc__score.output"} and plan.node("kyc").spec["output"] == "kyc"
    assert plan.node("kyc").successors == ["after"]


def test_the_pinned_version_decides_what_is_inlined():
    plan = compile_definition(parent(version=2))
    assert "kyc__only" in plan.nodes and "kyc__score" not in plan.nodes


def test_unknown_subflows_and_versions_are_named():
    problems = validate(parent(version=7))
    assert [(p.node, p.field, p.code) for p in problems] == [("kyc", "version", "unknown_subflow")]
    assert "versions 1 to 2, not 7" in problems[0].message
    problems = validate(parent(subflow="nope"))
    assert [(p.node, p.field) for p in problems] == [("kyc", "subflow")]
    problems = validate(parent(version="one"))
    assert [(p.node, p.field) for p in problems] == [("kyc", "version")]
    problems = validate(parent(retry={"max_attempts": 2}))
    assert [(p.node, p.field) for p in problems] == [("kyc", "retry")]


def test_a_condition_can_route_into_a_subflow_and_on_error_guards_its_steps():
    definition = parent(on_error="rescue")
    definition["nodes"][0] = {"id": "prep", "type": "condition", "cases": [{"when": {"var": "x", "op": "exists"}, "to": "kyc"}], "default": "after"}
    definition["nodes"].append({"id": "rescue", "type": "activity", "activity": "noop", "params": {}})
    definition["edges"] = [{"from": "kyc", "to": "after"}]
    plan = compile_definition(definition)
    assert plan.node("prep").spec["cases"][0]["to"] == "kyc__start"
    assert plan.node("kyc__score").on_error == "rescue" and plan.node("kyc").on_error == "rescue"


def test_subflows_nest_inside_loops_and_other_subflows():
    GRAPHS[("outer", 1)] = {"nodes": [{"id": "inner", "type": "subflow", "subflow": "check", "version": 2}]}
    try:
        definition = {"format_version": 1, "nodes": [{"id": "each", "type": "loop", "mode": "for_each", "items": "$.input.list", "body": {"nodes": [{"id": "o", "type": "subflow", "subflow": "outer", "version": 1}]}}]}
        plan = compile_definition(definition)
        assert plan.scope("each").node_ids == ["o__start", "o__inner__start", "o__inner__only", "o__inner", "o"]
    finally:
        GRAPHS.pop(("outer", 1))


def test_a_definition_without_subflows_is_left_alone():
    definition = {"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "noop", "params": {}}]}
    assert subflows.expand(definition) == (definition, [])
