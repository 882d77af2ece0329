"""Definitions people get wrong, seen from the builder: the pages keep working and say what is
wrong, and a save the database could not store is refused with the old definition kept."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.executions.models import Execution
from apps.workflows.services import create_workflow

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "node",
    [
        {"id": "a", "type": ["activity"]},
        {"id": "a", "type": "condition", "cases": 5},
        {"id": "a", "type": "activity", "activity": "log", "params": {"message": "x"}, "on_error": ["b"]},
        {"id": "a", "type": "loop", "mode": "for_each", "items": [1], "body": {"nodes": [{"id": "a", "type": "timer", "duration": 1}]}},
    ],
)
def test_a_malformed_draft_saved_through_the_api_still_opens_and_names_its_problem(alice, as_alice, api, node):
    response = api.post("/api/v1/workflows/", {"name": "Draft", "definition": {"format_version": 1, "nodes": [node]}}, format="json")
    assert response.status_code == 201
    pk = response.json()["id"]
    for name in ("workflows:detail", "workflows:edit", "workflows:json"):
        page = as_alice.get(reverse(name, args=[pk]))
        assert page.status_code == 200, name
    assert "node &#x27;a&#x27;" in page.content.decode() or ">a<" in page.content.decode()
    validated = api.post(f"/api/v1/workflows/{pk}/validate", {}, format="json")
    assert validated.status_code == 200 and validated.json()["problems"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_the_json_view_refuses_numbers_the_database_cannot_store(workflow, as_alice, number):
    before = workflow.definition
    text = '{"format_version": 1, "nodes": [{"id": "wait", "type": "timer", "duration": %s}]}' % number
    response = as_alice.post(reverse("workflows:json", args=[workflow.pk]), {"definition": text})
    assert response.status_code == 422
    assert "not valid JSON" in response.content.decode()
    workflow.refresh_from_db()
    assert workflow.definition == before


def test_a_run_input_of_5000_stays_5000_not_5000_point_0(alice, as_alice):
    wf = create_workflow(owner=alice, name="Orders", definition={
        "format_version": 1,
        "input_schema": {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]},
        "nodes": [{"id": "a", "type": "activity", "activity": "log", "params": {"message": "Approve {{ $.input.total }}"}}],
    })
    assert as_alice.post(reverse("workflows:run", args=[wf.pk]), {"in__total": "5000"}).status_code == 302
    assert json.dumps(Execution.objects.get().input) == '{"total": 5000}'
    assert as_alice.post(reverse("workflows:run", args=[wf.pk]), {"in__total": "12.5"}).status_code == 302
    assert Execution.objects.latest("pk").input == {"total": 12.5}


def test_saving_a_definition_with_problems_warns_that_it_will_not_run(workflow, as_alice):
    broken = {"format_version": 1, "nodes": [{"id": "a", "type": "timer", "duration": 1}, {"id": "b", "type": "timer", "duration": 1}], "edges": [{"from": "b", "to": "a"}, {"from": "a", "to": "b"}]}
    response = as_alice.post(reverse("workflows:json", args=[workflow.pk]), {"definition": json.dumps(broken)}, follow=True)
    html = response.content.decode()
    assert "Saved as a draft with" in html and "will not run" in html
    assert "cycle: " in html
    fixed = {"format_version": 1, "nodes": [{"id": "a", "type": "timer", "duration": 1}]}
    html = as_alice.post(reverse("workflows:json", args=[workflow.pk]), {"definition": json.dumps(fixed)}, follow=True).content.decode()
    assert "Definition saved." in html and "Saved as a draft" not in html


def test_a_signal_payload_of_nan_is_refused_as_not_json(running_run, as_alice):
    response = as_alice.post(reverse("executions:signal", args=[running_run.pk]), {"name": "pause", "payload": '{"x": NaN}'}, follow=True)
    assert response.status_code == 200
    assert "The payload is not valid JSON: NaN is not a JSON number" in response.content.decode()


def test_an_empty_post_to_an_inactive_workflows_run_dialog_says_it_is_inactive(workflow, as_alice):
    workflow.is_active = False
    workflow.save()
    response = as_alice.post(reverse("workflows:run", args=[workflow.pk]), {})
    assert response.status_code == 422 and "This workflow is inactive" in response.content.decode()
    assert not Execution.objects.exists()


@pytest.mark.parametrize("url", ["/workflows/?q=%00", "/executions/?q=a%00b", "/templates/?q=%00", "/executions/?since=2020-13-45", "/executions/5/replay/?q=%00"])
def test_list_filters_with_a_nul_character_or_an_impossible_date_do_not_fail(workflow, as_alice, url):
    assert as_alice.get(url).status_code in (200, 404)
