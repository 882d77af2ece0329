"""AI assistance: capabilities, validate, dry-run test, interpret against a local stand-in
for an OpenAI-compatible provider, and the ai.complete activity."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from apps.connectors.activities.ai import ai_complete
from apps.executions.activities import ActivityError

pytestmark = pytest.mark.django_db

GOOD = {
    "format_version": 1,
    "input_schema": {"type": "object", "properties": {"name": {"type": "string"}}},
    "nodes": [
        {"id": "shout", "type": "activity", "activity": "map", "params": {"source": "$.input", "values": {"greeting": {"fn": "upper", "args": ["@.name"]}}}, "output": "greeting"},
        {"id": "tell", "type": "activity", "activity": "notify.webhook", "params": {"url": "https://example.com/hook", "payload": "$.vars.greeting"}},
    ],
    "edges": [{"from": "shout", "to": "tell"}],
}


def test_interpret_returns_a_validated_definition(api, provider):
    provider.answers.append("```json\n" + json.dumps({"definition": GOOD, "explanation": "Upper-cases the name and posts it.", "confidence": 0.8}) + "\n```")
    response = api.post("/api/v1/ai/interpret", {"request": "shout the name and post it to our hook"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["definition"] == GOOD and body["confidence"] == 0.8 and body["explanation"] and body["problems"] == []
    sent = provider.received[-1].json()
    assert sent["model"] == "stand-in-1" and sent["messages"][-1]["content"] == "shout the name and post it to our hook"
    assert "notify.webhook" in sent["messages"][0]["content"]  # the capabilities go to the model


def test_a_malformed_answer_is_rejected_by_the_validator_after_a_repair_attempt(api, provider):
    bad = {"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "rm.rf", "params": {}}, {"id": "b", "type": "teleport"}], "edges": [{"from": "a", "to": "ghost"}]}
    provider.answers += [json.dumps({"definition": bad, "explanation": "?", "confidence": 0.9}), json.dumps({"definition": bad, "confidence": 0.9})]
    response = api.post("/api/v1/ai/interpret", {"request": "delete everything"}, format="json")
    assert response.status_code == 422
    body = response.json()
    codes = {p["code"] for p in body["problems"]}
    assert {"unknown_activity", "unknown_type"} <= codes and body["attempts"] == 2
    # The repair round told the model what was wrong.
    assert "rm.rf" in provider.received[-1].json()["messages"][-1]["content"]


def test_an_answer_that_is_not_json_is_rejected(api, provider, settings):
    settings.AI_REPAIR_ATTEMPTS = 0
    provider.answers.append("Sure! Here is your workflow: first fetch, then post.")
    response = api.post("/api/v1/ai/interpret", {"request": "x"}, format="json")
    assert response.status_code == 422 and response.json()["problems"][0]["code"] == "not_json"


def test_a_repaired_answer_is_accepted(api, provider):
    provider.answers += ["{\"definition\": {\"nodes\": []}}", json.dumps({"definition": GOOD, "explanation": "fixed", "confidence": 0.5})]
    response = api.post("/api/v1/ai/interpret", {"request": "x"}, format="json")
    assert response.status_code == 200 and response.json()["attempts"] == 2


def test_interpret_without_a_provider_answers_503_with_a_clear_message(api, settings):
    settings.AI_BASE_URL = ""
    response = api.post("/api/v1/ai/interpret", {"request": "anything"}, format="json")
    assert response.status_code == 503 and "AI_BASE_URL" in response.json()["detail"]
    # Everything else still works.
    assert api.get("/api/v1/ai/capabilities").status_code == 200
    assert api.post("/api/v1/ai/validate", {"definition": GOOD}, format="json").json()["valid"] is True


def test_a_provider_failure_is_a_502(api, provider):
    provider.routes["POST /v1/chat/completions"] = lambda r: (500, {}, {"error": "down"})
    assert api.post("/api/v1/ai/interpret", {"request": "x"}, format="json").status_code == 502


def test_capabilities_list_node_types_activities_and_operators(api):
    body = api.get("/api/v1/ai/capabilities").json()
    assert {"activity", "condition", "loop", "parallel", "timer"} <= {n["type"] for n in body["node_types"]}
    activities = {a["name"]: a for a in body["activities"]}
    assert {"http.request", "notify.email", "notify.slack", "notify.webhook", "map", "ai.complete"} <= set(activities)
    assert activities["http.request"]["params_schema"]["properties"]["auth"] and activities["http.request"]["external"]
    assert "gt" in body["condition_operators"] and "matches" in body["condition_operators"]
    assert any(f["name"] == "add_days" for f in body["mapping_functions"])


def test_validate_lists_every_problem(api):
    body = api.post("/api/v1/ai/validate", {"definition": {"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "http.request", "params": {"method": "FETCH"}}]}}, format="json").json()
    assert body["valid"] is False
    fields = {p["field"] for p in body["problems"]}
    assert "params.url" in fields and "params.method" in fields
    assert api.post("/api/v1/ai/validate", {}, format="json").status_code == 400


def test_dry_run_runs_local_steps_and_replaces_external_ones(api):
    definition = {
        "format_version": 1,
        "variables": {"seen": 0},
        "nodes": [
            {"id": "fetch", "type": "activity", "activity": "http.request", "params": {"url": "https://api.example.com/orders"}, "output": "orders"},
            {"id": "pick", "type": "activity", "activity": "map", "params": {"source": "$.vars.orders.body", "values": {"open": {"fn": "filter", "args": ["@.orders", "status", "open"]}}}, "output": "picked"},
            {"id": "big", "type": "condition", "cases": [{"when": {"var": "$.input.limit", "op": "gt", "value": 10}, "to": "each"}], "default": "tell"},
            {"id": "each", "type": "loop", "mode": "for_each", "items": "$.vars.picked.open", "body": {"nodes": [{"id": "say", "type": "activity", "activity": "log", "params": {"message": "order {{ $.item.id }}"}}]}, "output": "said"},
            {"id": "tell", "type": "activity", "activity": "notify.email", "params": {"to": "ops@example.com", "subject": "s", "body": "b"}},
        ],
        "edges": [{"from": "fetch", "to": "pick"}, {"from": "pick", "to": "big"}, {"from": "each", "to": "tell"}],
    }
    mocks = {"fetch": {"status": 200, "body": {"orders": [{"id": 1, "status": "open"}, {"id": 2, "status": "done"}, {"id": 3, "status": "open"}]}}}
    body = api.post("/api/v1/ai/test", {"definition": definition, "input": {"limit": 50}, "mocks": mocks}, format="json").json()
    assert body["status"] == "completed", body
    assert body["variables"]["picked"] == {"open": [{"id": 1, "status": "open"}, {"id": 3, "status": "open"}]}
    assert body["variables"]["said"] == [{"message": "order 1"}, {"message": "order 3"}]
    steps = {(s["scope"], s["node"]): s for s in body["steps"]}
    assert steps[("", "fetch")]["mocked"] == "declared"
    assert steps[("", "tell")]["mocked"] == "placeholder"
    assert steps[("", "pick")]["mocked"] is None
    # Another input takes the default branch: the loop is skipped.
    body = api.post("/api/v1/ai/test", {"definition": definition, "input": {"limit": 1}, "mocks": mocks}, format="json").json()
    assert [s["status"] for s in body["steps"] if s["node"] == "each"] == ["skipped"]


def test_dry_run_reports_a_failing_step_and_an_invalid_definition(api):
    failing = {"format_version": 1, "nodes": [{"id": "boom", "type": "activity", "activity": "fail", "params": {"error_type": "Nope", "message": "no"}}]}
    body = api.post("/api/v1/ai/test", {"definition": failing}, format="json").json()
    assert body["status"] == "failed" and body["error"]["type"] == "Nope" and body["error"]["node"] == "boom"
    response = api.post("/api/v1/ai/test", {"definition": {"format_version": 1, "nodes": [{"id": "x", "type": "nope"}]}}, format="json")
    assert response.status_code == 400 and response.json()["problems"]


def test_dry_run_of_a_stored_workflow_checks_permission(api_as, alice, charlie):
    from apps.workflows.services import create_workflow

    workflow = create_workflow(owner=alice, name="mine", definition=GOOD)
    assert api_as(alice).post("/api/v1/ai/test", {"workflow": workflow.pk, "input": {"name": "ada"}}, format="json").json()["variables"]["greeting"] == {"greeting": "ADA"}
    assert api_as(charlie).post("/api/v1/ai/test", {"workflow": workflow.pk}, format="json").status_code == 404


@pytest.mark.parametrize("method, url", [("get", "/api/v1/ai/capabilities"), ("post", "/api/v1/ai/validate"), ("post", "/api/v1/ai/test"), ("post", "/api/v1/ai/interpret")])
def test_the_ai_endpoints_need_a_signed_in_user(anon_api, method, url):
    assert getattr(anon_api, method)(url, {}, format="json").status_code in (401, 403)


def test_ai_complete_calls_the_same_provider(provider):
    from apps.executions.activities import ActivityContext

    provider.answers.append('{"sentiment": "positive"}')
    ctx = ActivityContext(execution_id=0, step_id=0, node_id="ai", attempt=1)
    out = ai_complete({"system": "Classify.", "prompt": "I love it", "json": True, "map": {"sentiment": "@.data.sentiment"}}, ctx)
    assert out["data"] == {"sentiment": "positive"} and out["mapped"] == {"sentiment": "positive"} and out["model"] == "stand-in-1"
    sent = provider.received[-1].json()
    assert sent["messages"] == [{"role": "system", "content": "Classify."}, {"role": "user", "content": "I love it"}]


@override_settings(AI_BASE_URL="", AI_MODEL="")
def test_ai_complete_without_a_provider_fails_clearly():
    from apps.executions.activities import ActivityContext

    with pytest.raises(ActivityError) as exc:
        ai_complete({"prompt": "hi"}, ActivityContext(execution_id=0, step_id=0, node_id="ai", attempt=1))
    assert exc.value.type == "AINotConfigured" and not exc.value.retryable
