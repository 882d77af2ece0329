"""A definition read back from jsonb is shown in the order people write it."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from apps.workflows.definition.ordering import ordered_definition
from apps.workflows.services import create_workflow

DEFINITION = {
    "format_version": 1,
    "input_schema": {"type": "object"},
    "nodes": [
        {"id": "route", "type": "condition", "name": "Big?", "cases": [{"when": {"var": "total", "op": "gt", "value": 5}, "to": "loop", "label": "big"}], "default": "loop"},
        {"id": "loop", "type": "loop", "mode": "for_each", "items": [1], "body": {
            "nodes": [{"id": "step", "type": "activity", "activity": "noop", "params": {"value": 1}, "output": "x", "retry": {"max_attempts": 2, "backoff": "fixed"}}],
        }},
    ],
    "edges": [{"from": "route", "to": "loop", "label": "x"}],
    "output": "$.vars",
}


@pytest.mark.django_db
def test_a_stored_definition_reads_back_in_writing_order(alice, api):
    workflow = create_workflow(owner=alice, name="Ordered", definition={"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "noop"}]})
    workflow.definition = DEFINITION
    workflow.save()
    workflow.refresh_from_db()
    assert list(workflow.definition) != list(DEFINITION)  # jsonb sorted the keys
    assert json.dumps(ordered_definition(workflow.definition)) == json.dumps(DEFINITION)
    assert json.dumps(api.get(f"/api/v1/workflows/{workflow.pk}/").json()["definition"]) == json.dumps(DEFINITION)
    client = Client()
    client.force_login(alice)
    page = client.get(f"/workflows/{workflow.pk}/json/").content.decode()
    assert page.index("&quot;format_version&quot;") < page.index("&quot;nodes&quot;") < page.index("&quot;edges&quot;")


def test_unknown_keys_and_malformed_parts_are_kept():
    odd = {"zeta": 1, "nodes": [{"x": 1, "id": "a", "type": "timer"}, 5], "edges": "no", "format_version": 1}
    out = ordered_definition(odd)
    assert out == odd
    assert list(out) == ["format_version", "nodes", "edges", "zeta"]
    assert list(out["nodes"][0]) == ["id", "type", "x"]
