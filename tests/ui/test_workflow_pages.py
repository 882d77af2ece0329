"""The builder pages: list, create, editor (nodes, edges, settings, JSON view), graph and run dialog."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.executions.models import Execution
from apps.workflows.models import Workflow
from apps.workflows.services import create_workflow

pytestmark = pytest.mark.django_db


def _html(response) -> str:
    return response.content.decode()


#
# List
#


def test_home_is_the_workflow_list(workflow, as_alice):
    response = as_alice.get("/")
    assert response.status_code == 200
    assert "Greeter" in _html(response) and 'href="/workflows/new/"' in _html(response)


def test_the_list_searches_filters_by_tag_and_paginates(workflow, alice, as_alice, django_assert_max_num_queries):
    for i in range(25):
        create_workflow(owner=alice, name=f"Nightly {i:02d}", tags=["nightly"])
    html = _html(as_alice.get(reverse("workflows:list"), {"q": "greet"}))
    assert "Greeter" in html and "Nightly" not in html
    html = _html(as_alice.get(reverse("workflows:list"), {"tag": "billing"}))
    assert "Greeter" in html and "Nightly 01" not in html
    with django_assert_max_num_queries(12):
        first = _html(as_alice.get(reverse("workflows:list"), {"tag": "nightly"}))
    assert "Page 1 of 2" in first and "26" not in first.split("Page 1 of 2")[1][:20]
    second = _html(as_alice.get(reverse("workflows:list"), {"tag": "nightly", "page": 2}))
    assert second.count(">Nightly ") == 5


def test_the_search_box_gets_just_the_results_fragment_over_htmx(workflow, as_alice):
    response = as_alice.get(reverse("workflows:list"), {"q": "greet"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="workflow-results")
    html = _html(response)
    assert "Greeter" in html and "<html" not in html and "<form" not in html


#
# Create and edit
#


def test_creating_a_workflow_leads_to_its_editor(alice, as_alice):
    response = as_alice.post(reverse("workflows:create"), {"name": "Onboarding", "description": "New hires", "tags": "HR, people, hr"})
    workflow = Workflow.objects.get(name="Onboarding")
    assert response.status_code == 302 and response["Location"] == reverse("workflows:edit", args=[workflow.pk])
    assert workflow.owner == alice and workflow.tags == ["hr", "people"]


def test_a_nameless_workflow_is_refused_next_to_the_name_field(as_alice):
    response = as_alice.post(reverse("workflows:create"), {"name": ""})
    assert response.status_code == 422
    assert 'data-field="name"' in _html(response) and "This field is required." in _html(response)
    assert not Workflow.objects.exists()


def test_the_editor_lists_nodes_edges_problems_and_draws_the_graph(workflow, as_alice):
    html = _html(as_alice.get(reverse("workflows:edit", args=[workflow.pk])))
    assert 'id="node-greet"' in html and 'id="node-charge"' in html
    assert "<svg" in html and 'data-node-id="greet"' in html
    assert "<style>" not in html  # the CSP allows no inline style elements
    assert f'href="/workflows/{workflow.pk}/nodes/greet"' in html


def test_adding_a_node_connects_it_after_the_last_one_and_opens_its_form(workflow, as_alice):
    response = as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "activity", "id": "pause", "activity": "delay"})
    assert response.status_code == 302 and response["Location"] == reverse("workflows:node", args=[workflow.pk, "pause"])
    workflow.refresh_from_db()
    assert workflow.definition["nodes"][-1] == {"id": "pause", "type": "activity", "activity": "delay", "params": {}}
    assert {"from": "charge", "to": "pause"} in workflow.definition["edges"]
    html = _html(as_alice.get(response["Location"]))
    # The form is built from the activity's params schema; the missing required param shows next to it.
    assert 'name="param__seconds"' in html
    assert "this field is required" in html.split('data-field="param__seconds"')[1].split("</div>")[0]


def test_adding_a_node_with_a_taken_id_is_refused(workflow, as_alice):
    response = as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "timer", "id": "greet"})
    assert response.status_code == 422
    assert "already exists" in _html(response)


def test_nodes_go_into_loop_bodies_and_new_parallel_branches(workflow, as_alice):
    as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "loop", "id": "each"})
    as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "activity", "id": "inner", "activity": "noop", "graph": "each.body"})
    as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "parallel", "id": "fan", "after": "-"})
    as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "timer", "id": "wait", "graph": "fan.branches[new]"})
    workflow.refresh_from_db()
    each = next(n for n in workflow.definition["nodes"] if n["id"] == "each")
    fan = next(n for n in workflow.definition["nodes"] if n["id"] == "fan")
    assert each["body"]["nodes"][0]["id"] == "inner"
    assert fan["branches"][0]["nodes"][0]["id"] == "wait"
    html = _html(as_alice.get(reverse("workflows:edit", args=[workflow.pk])))
    assert "body of each" in html and "branch 1 of fan" in html


def test_a_bad_number_is_refused_next_to_its_field_and_nothing_is_saved(workflow, as_alice):
    before = json.dumps(workflow.definition, sort_keys=True)
    response = as_alice.post(reverse("workflows:node", args=[workflow.pk, "greet"]), {"id": "greet", "activity": "log", "param__message": "hi", "timeout": "soon"})
    assert response.status_code == 422
    field = _html(response).split('data-field="timeout"')[1].split("</div>")[0]
    assert "enter a number" in field
    workflow.refresh_from_db()
    assert json.dumps(workflow.definition, sort_keys=True) == before


def test_validator_problems_show_next_to_the_field_they_name(workflow, as_alice):
    response = as_alice.post(
        reverse("workflows:node", args=[workflow.pk, "greet"]),
        {"id": "greet", "activity": "log", "param__message": "hi", "param__level": "info", "timeout": "-5"},
    )
    assert response.status_code == 422
    assert "minimum of 0" in _html(response).split('data-field="timeout"')[1].split("</div>")[0]
    response = as_alice.post(reverse("workflows:node", args=[workflow.pk, "greet"]), {"id": "greet", "activity": "log", "param__message": "{{ $.nowhere.x }}"})
    assert response.status_code == 422
    assert "$." in _html(response).split('data-field="param__message"')[1].split("</div>")[0]


def test_saving_a_node_records_a_version_and_renames_its_edges(workflow, as_alice):
    response = as_alice.post(
        reverse("workflows:node", args=[workflow.pk, "greet"]),
        {"id": "hello", "name": "Say hello", "activity": "log", "param__message": "Hi {{ $.input.name }}", "param__level": "warning", "retry_max_attempts": "3", "retry_backoff": "fixed"},
    )
    assert response.status_code == 302
    workflow.refresh_from_db()
    node = workflow.definition["nodes"][0]
    assert node == {"id": "hello", "type": "activity", "name": "Say hello", "activity": "log", "params": {"message": "Hi {{ $.input.name }}", "level": "warning"}, "retry": {"max_attempts": 3, "backoff": "fixed"}}
    assert workflow.definition["edges"] == [{"from": "hello", "to": "charge"}]
    from reversion.models import Version

    assert Version.objects.get_for_object(workflow).count() == 2


def test_condition_nodes_edit_cases_as_rows(workflow, as_alice):
    as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "condition", "id": "big", "graph": "", "after": "greet"})
    response = as_alice.post(
        reverse("workflows:node", args=[workflow.pk, "big"]),
        {"id": "big", "case_count": "1", "case_0_var": "$.input.count", "case_0_op": "gt", "case_0_value": "10", "case_0_to": "charge", "default": ""},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    workflow.refresh_from_db()
    big = next(n for n in workflow.definition["nodes"] if n["id"] == "big")
    assert big["cases"] == [{"when": {"var": "$.input.count", "op": "gt", "value": 10}, "to": "charge"}]


def test_loop_and_timer_forms(workflow, as_alice):
    as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "loop", "id": "each"})
    as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "activity", "id": "inner", "activity": "noop", "graph": "each.body"})
    response = as_alice.post(reverse("workflows:node", args=[workflow.pk, "each"]), {"id": "each", "mode": "for_each", "items": "$.input.items", "concurrency": "4", "complete_when": ""})
    assert response.status_code == 302
    as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "timer", "id": "nap"})
    response = as_alice.post(reverse("workflows:node", args=[workflow.pk, "nap"]), {"id": "nap", "duration": "a while"})
    assert response.status_code == 422 and "enter a number of seconds" in _html(response)
    workflow.refresh_from_db()
    each = next(n for n in workflow.definition["nodes"] if n["id"] == "each")
    assert each["items"] == "$.input.items" and each["concurrency"] == 4 and each["body"]["nodes"][0]["id"] == "inner"


def test_deleting_a_node_drops_its_edges(workflow, as_alice):
    as_alice.post(reverse("workflows:node-delete", args=[workflow.pk, "charge"]))
    workflow.refresh_from_db()
    assert [n["id"] for n in workflow.definition["nodes"]] == ["greet"] and workflow.definition["edges"] == []


def test_edges_are_added_checked_and_deleted(workflow, as_alice):
    as_alice.post(reverse("workflows:node-delete", args=[workflow.pk, "charge"]))
    as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "activity", "id": "b", "activity": "noop", "after": "-"})
    response = as_alice.post(reverse("workflows:edge-add", args=[workflow.pk]), {"source": "greet", "target": "greet"})
    assert response.status_code == 422 and "cannot lead back" in _html(response)
    response = as_alice.post(reverse("workflows:edge-add", args=[workflow.pk]), {"source": "greet", "target": "b", "label": "then"})
    assert response.status_code == 302
    workflow.refresh_from_db()
    assert workflow.definition["edges"] == [{"from": "greet", "to": "b", "label": "then"}]
    as_alice.post(reverse("workflows:edge-delete", args=[workflow.pk]), {"graph": "", "index": "0"})
    workflow.refresh_from_db()
    assert workflow.definition["edges"] == []


def test_settings_refuse_a_broken_input_schema_next_to_it(workflow, as_alice):
    response = as_alice.post(reverse("workflows:settings", args=[workflow.pk]), {"name": "Greeter", "input_schema": '{"type": "nope"}'})
    assert response.status_code == 422
    assert "not a valid JSON Schema" in _html(response).split('data-field="input_schema"')[1].split("</div>")[0]
    response = as_alice.post(reverse("workflows:settings", args=[workflow.pk]), {"name": "Greeter 2", "tags": "a", "input_schema": "{", "variables": ""})
    assert response.status_code == 422 and "not valid JSON" in _html(response)
    response = as_alice.post(reverse("workflows:settings", args=[workflow.pk]), {"name": "Greeter 2", "tags": "a", "variables": '{"n": 1}'})
    assert response.status_code == 302
    workflow.refresh_from_db()
    assert workflow.name == "Greeter 2" and workflow.definition["variables"] == {"n": 1} and "input_schema" not in workflow.definition


def test_the_json_view_shows_and_saves_the_definition(workflow, as_alice, as_bob):
    html = _html(as_bob.get(reverse("workflows:json", args=[workflow.pk])))
    assert "&quot;greet&quot;" in html and "may view this workflow but not change it" in html
    response = as_alice.post(reverse("workflows:json", args=[workflow.pk]), {"definition": "{not json"})
    assert response.status_code == 422 and "not valid JSON" in _html(response)
    response = as_alice.post(reverse("workflows:json", args=[workflow.pk]), {"definition": json.dumps({"format_version": 1, "nodes": [{"id": "x", "type": "activity", "activity": "noop"}]})})
    assert response.status_code == 302
    workflow.refresh_from_db()
    assert workflow.definition["nodes"][0]["id"] == "x"


#
# Detail, graph and run
#


def test_the_workflow_page_shows_the_graph_recent_runs_and_past_failures(workflow, failed_run, as_alice):
    html = _html(as_alice.get(reverse("workflows:detail", args=[workflow.pk])))
    assert 'class="wb-graph"' in html
    assert "Past failures" in html and f'href="/executions/{failed_run.pk}/"' in html
    assert "POST /charge answered 404" in html


def test_the_graph_is_an_svg_image(workflow, as_alice):
    response = as_alice.get(reverse("workflows:graph", args=[workflow.pk]))
    assert response["Content-Type"] == "image/svg+xml" and b"<svg" in response.content


def test_the_run_dialog_builds_its_form_from_the_input_schema(workflow, as_alice):
    html = _html(as_alice.get(reverse("workflows:run", args=[workflow.pk]), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="run-panel"))
    assert "<html" not in html
    assert 'name="in__name"' in html and 'type="number"' in html and 'type="checkbox"' in html
    assert "happy" in html and "Who to greet" in html


def test_running_with_a_missing_required_field_shows_it_there(workflow, as_alice):
    response = as_alice.post(reverse("workflows:run", args=[workflow.pk]), {"in__name": "", "in__count": "2"})
    assert response.status_code == 422
    assert "required" in _html(response).split('data-field="in__name"')[1].split("</div>")[0]
    assert not Execution.objects.exists()


def test_running_starts_an_execution_and_goes_to_its_live_page(workflow, alice, as_alice):
    response = as_alice.post(reverse("workflows:run", args=[workflow.pk]), {"in__name": "Ada", "in__count": "2", "in__loud": "on", "in__mood": '"calm"'})
    execution = Execution.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("executions:detail", args=[execution.pk])
    assert execution.input == {"name": "Ada", "count": 2, "loud": True, "mood": "calm"}
    assert execution.created_by == alice and execution.trigger == "manual"


def test_an_htmx_run_redirects_the_whole_page(workflow, as_alice):
    response = as_alice.post(reverse("workflows:run", args=[workflow.pk]), {"in__name": "Ada"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Redirect"].startswith("/executions/")


def test_a_workflow_with_problems_does_not_run(workflow, as_alice):
    as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "activity", "id": "lonely", "activity": "noop", "after": "-"})
    response = as_alice.post(reverse("workflows:run", args=[workflow.pk]), {"in__name": "Ada"})
    assert response.status_code == 422
    assert "unreachable" in _html(response) and not Execution.objects.exists()


def test_a_schemaless_workflow_runs_with_a_json_input(alice, as_alice):
    wf = create_workflow(owner=alice, name="Raw", definition={"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "noop"}]})
    response = as_alice.post(reverse("workflows:run", args=[wf.pk]), {"input_json": "[1]"})
    assert response.status_code == 422 and "must be a JSON object" in _html(response)
    response = as_alice.post(reverse("workflows:run", args=[wf.pk]), {"input_json": '{"x": 1}'})
    assert response.status_code == 302 and Execution.objects.get().input == {"x": 1}


def test_the_error_help_page_has_an_anchor_for_every_rule(as_alice):
    from apps.workflows.suggestions import GENERIC, RULES

    html = _html(as_alice.get(reverse("workflows:help")))
    for rule in (*RULES, GENERIC):
        assert f'id="{rule.docs}"' in html


def test_the_list_offers_edit_only_where_the_user_may_change(workflow, as_alice, as_bob):
    edit = f'href="/workflows/{workflow.pk}/edit/"'
    assert edit in _html(as_alice.get(reverse("workflows:list")))
    html = _html(as_bob.get(reverse("workflows:list")))
    assert "Greeter" in html and edit not in html


def test_node_types_without_a_form_of_their_own_edit_their_fields_as_json(workflow, as_alice):
    as_alice.post(reverse("workflows:node-add", args=[workflow.pk]), {"type": "signal_wait", "id": "wait", "after": "greet"})
    html = _html(as_alice.get(reverse("workflows:node", args=[workflow.pk, "wait"])))
    assert 'name="extra"' in html
    response = as_alice.post(reverse("workflows:node", args=[workflow.pk, "wait"]), {"id": "wait", "extra": "[1]"})
    assert response.status_code == 422 and "must be a JSON object" in _html(response)
    response = as_alice.post(reverse("workflows:node", args=[workflow.pk, "wait"]), {"id": "wait", "timeout": "60", "extra": '{"signal": "go", "timeout_to": "charge"}'})
    assert "signal &#x27;go&#x27; is not declared" in _html(response).split('data-field="extra"')[1].split("</div>")[0]
    response = as_alice.post(reverse("workflows:settings", args=[workflow.pk]), {"name": "Greeter", "input_schema": json.dumps(workflow.definition["input_schema"]), "signals": '[{"name": "go"}]'})
    assert response.status_code == 302
    response = as_alice.post(reverse("workflows:node", args=[workflow.pk, "wait"]), {"id": "wait", "timeout": "60", "extra": '{"signal": "go", "timeout_to": "charge"}'})
    assert response.status_code == 302
    workflow.refresh_from_db()
    wait = next(n for n in workflow.definition["nodes"] if n["id"] == "wait")
    assert wait == {"id": "wait", "type": "signal_wait", "timeout": 60, "signal": "go", "timeout_to": "charge"}


def test_the_workflow_list_links_to_import_and_export(workflow, as_alice):
    html = _html(as_alice.get(reverse("workflows:list")))
    assert f'href="{reverse("transfer:import")}"' in html and f'href="{reverse("transfer:export")}"' in html
