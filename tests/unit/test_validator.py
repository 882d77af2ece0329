"""The validator on definitions people get wrong: it reports, naming node and field, and never crashes
(a crash here is a server error on every page that shows the workflow)."""

from __future__ import annotations

import pytest

from apps.workflows.definition.validator import validate


def _doc(*nodes: dict, **extra) -> dict:
    return {"format_version": 1, "nodes": list(nodes), **extra}


LOG = {"id": "a", "type": "activity", "activity": "log", "params": {"message": "hi"}}


@pytest.mark.parametrize(
    "node",
    [
        {"id": "a", "type": ["activity"]},
        {"id": "a", "type": {"name": "activity"}},
        {"id": "a", "type": "condition", "cases": 5},
        {"id": "a", "type": "condition", "cases": [{"when": {"var": "x", "op": "eq", "value": 1}, "to": {"id": "b"}}]},
        {"id": "a", "type": "condition", "cases": [], "default": ["b"]},
        {**LOG, "on_error": ["b"]},
        {**LOG, "on_error": {"id": "b"}},
        {"id": "a", "type": "approval", "title": "t", "outcomes": [1, {"x": 2}], "routes": {"ok": "a"}},
        {"id": "a", "type": "approval", "title": "t", "outcomes": 3, "routes": {"ok": "a"}},
        {"id": "a", "type": "approval", "title": "t", "timeout_to": ["a"]},
    ],
)
def test_malformed_nodes_are_reported_not_crashed_on(node):
    problems = validate(_doc(node))
    assert problems, node
    assert all(p.node == "a" or p.field for p in problems)


def test_outcomes_that_are_not_a_list_are_not_spelled_out_letter_by_letter():
    node = {"id": "a", "type": "approval", "title": "t", "outcomes": "yes", "routes": {"reject": "a"}}
    messages = [p.message for p in validate(_doc(node))]
    assert not any("(y, e, s)" in m for m in messages), messages
    assert any(p.field == "outcomes" for p in validate(_doc(node)))


@pytest.mark.parametrize(
    ("timer", "field"),
    [
        ({"duration": -5}, "duration"),
        ({"duration": "soon"}, "duration"),
        ({"until": "tomorrow"}, "until"),
        ({"until": "2030-13-45T99:00:00Z"}, "until"),
    ],
)
def test_a_timer_that_could_never_fire_is_refused_before_it_runs(timer, field):
    problems = validate(_doc({"id": "wait", "type": "timer", **timer}))
    assert [(p.node, p.field) for p in problems] == [("wait", field)]


@pytest.mark.parametrize("timer", [{"duration": 0}, {"duration": "2.5"}, {"duration": "$.input.wait"}, {"until": "2030-01-31T09:00:00Z"}, {"until": "2030-01-31 09:00"}, {"until": "{{ $.input.at }}"}])
def test_good_timers_pass(timer):
    assert validate(_doc({"id": "wait", "type": "timer", **timer})) == []


def test_the_run_output_is_checked_for_bad_references():
    problems = validate(_doc(LOG, output={"total": "$.varz.total", "ok": "$.vars.ok"}))
    assert [(p.node, p.field, p.code) for p in problems] == [(None, "output", "jsonpath")]
    assert "$.varz.total" in problems[0].message


def test_a_bad_node_id_is_explained_in_words_not_as_an_escaped_regex():
    problems = validate(_doc({**LOG, "id": "say hi"}))
    message = next(p.message for p in problems if p.field == "id")
    assert "\\\\" not in message
    assert "start with a letter" in message and "'say hi'" in message


def test_an_empty_workflow_or_loop_body_asks_for_a_node_in_words():
    assert [(p.field, p.message) for p in validate({"format_version": 1, "nodes": []})] == [("nodes", "add at least one node")]
    loop = {"id": "l", "type": "loop", "mode": "for_each", "items": [1], "body": {"nodes": []}}
    assert ("body.nodes", "add at least one node") in [(p.field, p.message) for p in validate(_doc(loop))]
