"""`matches` on patterns written by users (issue 15): RE2, so no pattern backtracks; bad
patterns are clear errors naming the pattern, on save when they are literal, and a failure of
the node (or the trigger) when they come from data."""

from __future__ import annotations

import uuid

import pytest

from apps.executions.engine.orchestrator import start_execution
from apps.triggers.models import EventTrigger
from apps.workflows.definition import expressions
from apps.workflows.definition.validator import validate
from apps.workflows.services import create_workflow
from tests.helpers import wait_for

CATASTROPHIC = "(a+)+$"  # 22 s on 28 characters with Python's re
VICTIM = "a" * 28 + "b"


def routed(when: dict, input_schema: dict | None = None) -> dict:
    definition = {
        "format_version": 1,
        "nodes": [
            {"id": "route", "type": "condition", "cases": [{"when": when, "to": "yes"}], "default": "no"},
            {"id": "yes", "type": "activity", "activity": "set", "params": {"values": {"route": "yes"}}},
            {"id": "no", "type": "activity", "activity": "set", "params": {"values": {"route": "no"}}},
        ],
        "edges": [],
    }
    if input_schema:
        definition["input_schema"] = input_schema
    return definition


def holds(pattern, text) -> bool:
    return expressions.evaluate({"var": "$.input.text", "op": "matches", "value": pattern}, {"input": {"text": text}})


#
# The evaluator
#


def test_a_catastrophic_pattern_is_answered_without_backtracking():
    assert holds(CATASTROPHIC, VICTIM) is False
    assert holds(CATASTROPHIC, "a" * 100_000 + "b") is False
    assert holds("(x+x+)+y", "x" * 50_000) is False
    assert holds(r"@example\.com$", "ada@example.com") is True
    assert holds("(?i)^ADA", "ada lovelace") is True


def test_an_invalid_pattern_is_a_condition_error_naming_it():
    with pytest.raises(expressions.ConditionError, match=r"matches: '\(' is not a valid regular expression"):
        holds("(", "abc")
    with pytest.raises(expressions.ConditionError, match="no backreferences or lookaround"):
        holds(r"(a)\1", "aa")
    with pytest.raises(expressions.ConditionError, match="must be a string, not null"):
        holds(None, "abc")


def test_patterns_and_texts_past_the_limits_are_refused(settings):
    settings.WB_REGEX_MAX_LENGTH = 50
    settings.WB_REGEX_MAX_TEXT = 1000
    with pytest.raises(expressions.ConditionError, match="is 51 characters long, more than the limit of 50"):
        holds("a" * 51, "a")
    with pytest.raises(expressions.ConditionError, match="the text is 1,001 characters long"):
        holds("a", "a" * 1001)
    settings.WB_REGEX_MAX_MEMORY = 1 << 20
    with pytest.raises(expressions.ConditionError, match="too large to compile"):
        holds(r"\pL{1000}" * 5, "a")  # within the length limit, past the memory limit


def test_text_that_is_not_valid_unicode_is_searched_all_the_same():
    assert holds("b", "a\ud800b") is True


#
# The validator and the trigger forms: literal patterns compile on save
#


def test_the_validator_rejects_a_literal_pattern_that_does_not_compile_naming_node_and_field():
    definition = routed({"all": [{"var": "$.input.text", "op": "eq", "value": "x"}, {"var": "$.input.text", "op": "matches", "value": "("}]})
    problems = validate(definition)
    assert [(p.node, p.field, p.code) for p in problems] == [("route", "cases[0].when.all[1].value", "regex")]
    assert "'('" in problems[0].message
    loop = {"format_version": 1, "nodes": [{"id": "again", "type": "loop", "mode": "while", "condition": {"var": "$.input.t", "op": "matches", "value": "[z-a]"}, "max_iterations": 3, "body": {"nodes": [{"id": "tick", "type": "activity", "activity": "noop"}]}}], "edges": []}
    assert [(p.node, p.field) for p in validate(loop)] == [("again", "condition.value")]


def test_patterns_from_references_are_checked_when_the_run_reads_them():
    assert validate(routed({"var": "$.input.text", "op": "matches", "value_from": "$.input.pattern"})) == []
    assert validate(routed({"var": "$.input.text", "op": "matches", "value": "{{ $.input.pattern }}"})) == []
    assert validate(routed({"var": "$.input.text", "op": "matches", "value": CATASTROPHIC})) == []


def test_an_event_trigger_with_a_bad_pattern_is_refused_naming_it(db, alice, api):
    wf = create_workflow(owner=alice, name=f"wf {uuid.uuid4().hex[:6]}", definition=routed({"var": "$.input.text", "op": "exists"}))
    response = api.post(f"/api/v1/workflows/{wf.pk}/event-triggers", {"event_type": "a", "condition": {"var": "$.event.payload.x", "op": "matches", "value": "(?<=x)"}}, format="json")
    assert response.status_code == 400
    assert "condition.value" in str(response.json()["condition"]) and "(?<=x)" in str(response.json()["condition"])


#
# The web process: dry runs and events
#


def test_a_dry_run_with_a_catastrophic_pattern_answers_and_a_bad_one_fails_its_step(db, api):
    definition = routed({"var": "$.input.text", "op": "matches", "value_from": "$.input.pattern"})
    body = api.post("/api/v1/ai/test", {"definition": definition, "input": {"text": VICTIM, "pattern": CATASTROPHIC}}, format="json").json()
    assert body["status"] == "completed" and body["variables"]["route"] == "no"
    response = api.post("/api/v1/ai/test", {"definition": definition, "input": {"text": "abc", "pattern": "("}}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    assert body["error"]["node"] == "route" and body["error"]["type"] == "ConditionError" and "'('" in body["error"]["message"]


def test_an_event_whose_trigger_reads_a_bad_pattern_skips_that_trigger(db, alice, api):
    wf = create_workflow(owner=alice, name=f"wf {uuid.uuid4().hex[:6]}", definition=routed({"var": "$.input.text", "op": "exists"}))
    EventTrigger.objects.create(workflow=wf, event_type="check", condition={"var": "$.event.payload.text", "op": "matches", "value_from": "$.event.payload.pattern"})
    response = api.post("/api/v1/events", {"type": "check", "payload": {"text": VICTIM, "pattern": CATASTROPHIC}}, format="json")
    assert response.status_code == 202 and response.json()["skipped"][0]["reason"] == "the trigger's condition does not hold"
    response = api.post("/api/v1/events", {"type": "check", "payload": {"text": "abc", "pattern": "("}}, format="json")
    assert response.status_code == 202
    assert response.json()["started"] == [] and "'(' is not a valid regular expression" in response.json()["skipped"][0]["reason"]


#
# Workers
#


@pytest.mark.worker
def test_a_run_with_a_catastrophic_pattern_completes_and_one_with_a_bad_pattern_fails_the_node(worker, alice):
    definition = routed({"var": "$.input.text", "op": "matches", "value_from": "$.input.pattern"})
    wf = create_workflow(owner=alice, name=f"wf {uuid.uuid4().hex[:6]}", definition=definition)
    slow = wait_for(start_execution(wf, {"text": VICTIM, "pattern": CATASTROPHIC}, acting_user=alice))
    assert slow.status == "completed" and slow.variables["route"] == "no"
    bad = wait_for(start_execution(wf, {"text": "abc", "pattern": "("}, acting_user=alice))
    assert bad.status == "failed"
    step = bad.steps.get(node_id="route")
    assert step.status == "failed" and step.error["type"] == "ConditionError" and "'('" in step.error["message"]


#
# Users' JSON Schemas (input_schema, signal schemas): their regexes run on RE2 too
#


def test_an_input_schema_pattern_runs_on_re2_and_bad_ones_are_refused_on_save():
    from apps.workflows.definition.validator import first_data_error

    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": CATASTROPHIC}},
        "patternProperties": {"^(x+x+)+y$": {"type": "integer"}},
        "additionalProperties": False,
    }
    assert first_data_error(schema, {"code": VICTIM}) == ("code", f"{VICTIM!r} does not match {CATASTROPHIC!r}")
    assert first_data_error(schema, {"x" * 5000: 1}) is not None  # not one of the properties, no pattern matches
    assert first_data_error(schema, {"code": "aaa", "xxy": 1}) is None
    assert first_data_error(schema, {"xxy": "one"})[0] == "xxy"
    definition = {**routed({"var": "$.input.code", "op": "exists"}), "input_schema": {"type": "object", "properties": {"code": {"type": "string", "pattern": "(?=a)"}}}}
    assert [(p.field, p.code) for p in validate(definition)] == [("input_schema.properties.code.pattern", "regex")]
    definition["input_schema"]["properties"]["code"]["pattern"] = CATASTROPHIC
    definition["signals"] = [{"name": "go", "schema": {"type": "object", "patternProperties": {r"(a)\1": {}}}}]
    assert [(p.field, p.code) for p in validate(definition)] == [("signals[0].schema.patternProperties.(a)\\1", "regex")]


@pytest.mark.django_db
def test_starting_a_run_checks_the_input_schema_pattern_on_re2(alice, api):
    definition = {**routed({"var": "$.input.code", "op": "exists"}), "input_schema": {"type": "object", "properties": {"code": {"type": "string", "pattern": CATASTROPHIC}}}}
    wf = create_workflow(owner=alice, name=f"wf {uuid.uuid4().hex[:6]}", definition=definition)
    response = api.post(f"/api/v1/workflows/{wf.pk}/runs", {"input": {"code": VICTIM}}, format="json")
    assert response.status_code == 400 and "does not match" in response.json()["input.code"][0]


@pytest.mark.django_db
def test_a_schema_ref_loop_or_a_remote_ref_is_refused_on_save_and_a_clear_400_at_run_start(alice, api):
    loop = {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
    remote = {"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}}
    for schema, field, words in ((loop, "input_schema.$ref", "in a loop"), (remote, "input_schema.properties.x.$ref", "inside the schema")):
        definition = {**routed({"var": "$.input.x", "op": "exists"}), "input_schema": schema}
        problems = validate(definition)
        assert [(p.field, p.code) for p in problems] == [(field, "schema")] and words in problems[0].message
    # Saved before these checks: the run start answers 400, not a RecursionError.
    wf = create_workflow(owner=alice, name=f"wf {uuid.uuid4().hex[:6]}", definition={**routed({"var": "$.input.x", "op": "exists"}), "input_schema": loop})
    from apps.workflows.definition.validator import first_data_error

    assert first_data_error(loop, {"x": 1}) == ("", "the schema refers to itself ($ref) in a loop that never reaches the data")
    assert "cannot be resolved" in first_data_error(remote, {"x": 1})[1]
    assert wf.definition["input_schema"] == loop
