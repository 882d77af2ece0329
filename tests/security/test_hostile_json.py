"""Hostile JSON (issue 15): nesting 10,000 levels deep, "\u0000", lone surrogates and documents
nested a few hundred levels answer 400 naming the place at every entry point, never 500, and
nothing is stored."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from apps.connectors.activities.notify import sign
from apps.executions.models import Execution
from apps.triggers.models import EventTrigger
from apps.workflows.definition.validator import validate
from apps.workflows.models import Workflow
from apps.workflows.services import create_workflow

SIMPLE = {
    "format_version": 1,
    "nodes": [{"id": "note", "type": "activity", "activity": "set", "params": {"values": {"seen": "$.input"}}}],
    "edges": [],
}


def nested(levels: int, leaf: str = "1") -> str:
    """JSON text of `levels` objects, one inside the other ({"a": {"a": … 1 …}})."""
    return '{"a": ' * levels + leaf + "}" * levels


def deep_value(levels: int):
    value: dict | int = 1
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture
def workflow(alice):
    return create_workflow(owner=alice, name=f"wf {uuid.uuid4().hex[:6]}", definition=SIMPLE)


def _body(response) -> str:
    return response.content.decode()


#
# The API's parser
#


def test_ten_thousand_levels_of_nesting_answer_400_naming_the_field(db, api):
    text = '{"name": "deep", "definition": {"format_version": 1, "nodes": [' + nested(10_000) + "]}}"
    response = api.post("/api/v1/workflows/", text, content_type="application/json")
    assert response.status_code == 400, _body(response)
    body = response.json()
    assert body["field"].startswith("definition.nodes[0].a.a")
    assert "nests deeper than" in body["detail"]
    assert not Workflow.objects.filter(name="deep").exists()


def test_a_nul_character_in_a_definition_answers_400_naming_the_field(db, api):
    definition = {**SIMPLE, "nodes": [{**SIMPLE["nodes"][0], "params": {"values": {"seen": "a\u0000b"}}}]}
    response = api.post("/api/v1/workflows/", {"name": "nul", "definition": definition}, format="json")
    assert response.status_code == 400, _body(response)
    assert response.json()["field"] == "definition.nodes[0].params.values.seen"
    assert "NUL" in response.json()["detail"]
    assert not Workflow.objects.filter(name="nul").exists()


def test_a_nul_character_in_a_key_or_a_lone_surrogate_answers_400(db, api, workflow):
    before = workflow.definition
    response = api.patch(f"/api/v1/workflows/{workflow.pk}/", '{"definition": {"nodes": [], "x\\u0000": 1}}', content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "definition.x\\u0000"
    response = api.patch(f"/api/v1/workflows/{workflow.pk}/", '{"description": "\\ud800"}', content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "description"
    assert "surrogate" in response.json()["detail"]
    workflow.refresh_from_db()
    assert workflow.definition == before


def test_a_parameter_nested_900_levels_is_refused_on_save_and_nothing_is_stored(db, api, workflow):
    before = workflow.definition
    text = json.dumps({"definition": {**SIMPLE, "nodes": [{**SIMPLE["nodes"][0], "params": {"values": "PARAM"}}]}}).replace('"PARAM"', nested(900))
    response = api.patch(f"/api/v1/workflows/{workflow.pk}/", text, content_type="application/json")
    assert response.status_code == 400, _body(response)
    assert response.json()["field"].startswith("definition.nodes[0].params.values.a")
    workflow.refresh_from_db()
    assert workflow.definition == before


def test_a_definition_deeper_than_the_limit_names_the_node_and_cannot_start(db, api, alice):
    # 70 levels: within what the parser accepts for a body, past what a definition may hold.
    definition = {**SIMPLE, "nodes": [{**SIMPLE["nodes"][0], "params": {"values": {"deep": deep_value(70)}}}]}
    problems = validate(definition)
    assert [(p.node, p.code) for p in problems] == [("note", "unstorable")]
    assert problems[0].field.startswith("params.values.deep.a.a") and "more)…" in problems[0].field
    wf = create_workflow(owner=alice, name="too deep", definition=definition)  # drafts may be saved
    response = api.post(f"/api/v1/workflows/{wf.pk}/runs", {"input": {}}, format="json")
    assert response.status_code == 400, _body(response)
    assert "nests deeper than 64 levels" in _body(response)
    assert not Execution.objects.filter(workflow=wf).exists()


def test_run_input_with_nul_or_too_deep_answers_400(db, api, workflow):
    response = api.post(f"/api/v1/workflows/{workflow.pk}/runs", {"input": {"name": "x\u0000"}}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "input.name"
    response = api.post(f"/api/v1/workflows/{workflow.pk}/runs", '{"input": ' + nested(5000) + "}", content_type="application/json")
    assert response.status_code == 400 and response.json()["field"].startswith("input.a.a")
    assert not Execution.objects.filter(workflow=workflow).exists()


def test_a_body_larger_than_the_limit_answers_400_naming_the_limit(db, api, settings):
    settings.WB_JSON_MAX_BYTES = 1000
    response = api.post("/api/v1/workflows/", json.dumps({"name": "big", "description": "x" * 2000}), content_type="application/json")
    assert response.status_code == 400 and "1,000 bytes" in response.json()["detail"]
    assert not Workflow.objects.filter(name="big").exists()


def test_form_encoded_bodies_get_the_same_checks(db, api):
    response = api.post("/api/v1/workflows/", {"name": "form", "definition": "[" * 5000 + "]" * 5000}, format="multipart")
    assert response.status_code == 400 and response.json()["field"].startswith("definition[0][0]")
    response = api.post("/api/v1/workflows/", "name=form&description=a%00b", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response.json()["field"] == "description"
    assert not Workflow.objects.filter(name="form").exists()


def test_events_signals_dry_runs_and_imports_refuse_hostile_json(db, api, workflow):
    EventTrigger.objects.create(workflow=workflow, event_type="order.created")
    for url in ("/api/v1/events", "/api/v1/ai/test", "/api/v1/ai/validate", "/api/v1/workflows/import"):
        response = api.post(url, '{"type": "order.created", "payload": ' + nested(10_000) + "}", content_type="application/json")
        assert response.status_code == 400, (url, _body(response))
        response = api.post(url, '{"type": "order.created", "definition": {"x": "\\u0000"}}', content_type="application/json")
        assert response.status_code == 400 and response.json()["field"] == "definition.x", (url, _body(response))
    assert not Execution.objects.exists()


#
# Webhooks (their own raw-body parsing)
#


def test_a_signed_webhook_body_nested_too_deeply_or_with_nul_answers_400(db, api, workflow):
    created = api.post(f"/api/v1/workflows/{workflow.pk}/webhooks", {"name": "shop"}, format="json").json()
    client = Client()
    for body, field in ((nested(10_000).encode(), "body.a.a"), (b'{"order": "\\u0000"}', "body.order")):
        now = int(time.time())
        response = client.post(f"/api/v1/hooks/{created['token']}", body, content_type="application/json",
                               HTTP_X_WORKFLOW_SIGNATURE=sign(created["secret"], body, now), HTTP_X_WORKFLOW_TIMESTAMP=str(now))
        assert response.status_code == 400, _body(response)
        assert any(key.startswith(field) for key in response.json()), response.json()
    assert not Execution.objects.exists()


#
# The UI's forms and commands
#


def test_the_json_view_refuses_nul_and_deep_nesting_with_a_message(db, alice, workflow):
    client = Client()
    client.force_login(alice)
    before = workflow.definition
    for text, words in (('{"nodes": [], "x": "\\u0000"}', "x: contains a NUL character"), (nested(10_000), "nests deeper than")):
        response = client.post(f"/workflows/{workflow.pk}/json/", {"definition": text})
        assert response.status_code == 422
        assert words in response.content.decode()
    workflow.refresh_from_db()
    assert workflow.definition == before


def test_the_import_page_refuses_a_file_nested_too_deeply(db, alice):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = Client()
    client.force_login(alice)
    upload = SimpleUploadedFile("export.json", nested(10_000).encode(), content_type="application/json")
    response = client.post("/workflows/import/", {"document": upload, "mode": "import"})
    assert response.status_code == 422 and "nests deeper than" in response.content.decode()
    assert not Workflow.objects.exists()


def test_the_run_command_refuses_nul_in_its_input(db, workflow):
    with pytest.raises(CommandError, match="name: contains a NUL character"):
        call_command("run_workflow", workflow.slug, "--input", '{"name": "\\u0000"}')
    assert not Execution.objects.exists()


def test_the_admins_json_fields_refuse_nul_and_deep_nesting_with_a_form_error(db, admin_user, workflow):
    client = Client()
    client.force_login(admin_user)
    data = {"workflow": workflow.pk, "event_type": "a", "condition": '{"var": "$.event.payload.x", "op": "eq", "value": "\\u0000"}', "input_mapping": "", "enabled": "on"}
    response = client.post("/admin/triggers/eventtrigger/add/", data)
    assert response.status_code == 200 and "value: contains a NUL character" in response.content.decode()
    response = client.post("/admin/triggers/eventtrigger/add/", {**data, "condition": nested(10_000)})
    assert response.status_code == 200 and "nests deeper than" in response.content.decode()
    assert not EventTrigger.objects.exists()


def test_the_run_dialog_refuses_nul_and_deep_nesting_in_its_json_input(db, alice, workflow):
    client = Client()
    client.force_login(alice)
    for text, words in (('{"name": "\\u0000"}', "name: contains a NUL character"), (nested(10_000), "nests deeper than")):
        response = client.post(f"/workflows/{workflow.pk}/run/", {"input_json": text})
        assert response.status_code == 422 and words in response.content.decode()
    assert not Execution.objects.exists()


def test_signals_with_nul_in_their_payload_are_refused_by_the_api_and_the_page(db, alice, api, workflow):
    from apps.executions.engine.orchestrator import start_execution
    from apps.executions.models import ExecutionEvent

    execution = start_execution(workflow, {}, acting_user=alice)
    events = ExecutionEvent.objects.filter(execution=execution).count()
    response = api.post(f"/api/v1/executions/{execution.pk}/signals/pause", '{"payload": {"why": "\\u0000"}}', content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "payload.why"
    client = Client()
    client.force_login(alice)
    response = client.post(f"/executions/{execution.pk}/signal/", {"name": "pause", "payload": '{"why": "\\u0000"}'}, follow=True)
    assert "why: contains a NUL character" in response.content.decode()
    assert ExecutionEvent.objects.filter(execution=execution).count() == events
