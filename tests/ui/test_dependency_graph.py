"""The dependency graph of a dynamic node: the same data on the live page (SVG, statuses, critical
path, links to each item's step) and at GET /api/v1/executions/{id}/dynamic/{node_id}; only the
items that changed travel in a live update; strangers get 404."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.urls import reverse

from apps.executions.depgraph_drawing import layout
from apps.executions.engine.orchestrator import start_execution
from apps.executions.models import Execution
from apps.executions.presenters import dynamic_graph
from apps.executions.views import render_live_fragments
from apps.workflows.services import create_workflow
from tests.helpers import wait_for
from tests.ui.conftest import client_for

ITEMS = [
    {"id": "a", "ok": 1}, {"id": "b", "ok": 1}, {"id": "bad"},
    {"id": "c", "depends_on": ["a"], "ok": 1}, {"id": "d", "depends_on": ["a", "b"], "ok": 1},
    {"id": "e", "depends_on": ["c"], "ok": 1}, {"id": "f", "depends_on": ["bad"], "ok": 1},
]


def _workflow(owner):
    return create_workflow(owner=owner, name=f"deps {uuid.uuid4().hex[:6]}", definition={
        "format_version": 1,
        "nodes": [{
            "id": "build", "type": "dynamic", "max_concurrent": 2, "activity": "fail",
            "params": {"error_type": "Boom", "retryable": False, "succeed_on_attempt": "{{ $.item.ok | 99 }}"},
            "items": ITEMS,
        }],
    })


@pytest.mark.worker
def test_the_api_and_the_page_show_every_item_with_its_status_step_and_the_critical_path(worker, alice, api, api_as, charlie):
    execution = wait_for(start_execution(_workflow(alice), {}), timeout=60)
    body = api.get(f"/api/v1/executions/{execution.pk}/dynamic/build").json()
    statuses = {i["id"]: i["status"] for i in body["items"]}
    assert statuses == {"a": "completed", "b": "completed", "bad": "failed", "c": "completed", "d": "completed", "e": "completed", "f": "blocked"}
    by_id = {i["id"]: i for i in body["items"]}
    assert by_id["d"]["depends_on"] == ["a", "b"] and by_id["bad"]["error"]["type"] == "Boom"
    assert all(by_id[i]["step"] for i in ("a", "bad", "e")) and by_id["f"]["step"] is None
    assert body["critical_path"]["items"][-1] in ("e", "d") and body["counts"]["completed"] == 5

    html = client_for(alice).get(reverse("executions:detail", args=[execution.pk])).content.decode()
    assert "Dependency graph of <code>build</code>" in html
    assert re.search(r'class="item status-blocked[^"]*" data-item="f"', html)
    item_url = reverse("executions:dynamic-item", args=[execution.pk, "build", "bad"])
    assert f'data-item="bad" data-url="{item_url}"' in html
    step = client_for(alice).get(item_url).content.decode()
    assert "Boom" in step  # the failed item's step, with its error
    assert "has not run: it is blocked" in client_for(alice).get(reverse("executions:dynamic-item", args=[execution.pk, "build", "f"])).content.decode()
    assert client_for(charlie).get(item_url).status_code == 404
    assert 'class="dep critical"' in html

    # Strangers learn nothing; an unknown node is a 404 too.
    assert api_as(charlie).get(f"/api/v1/executions/{execution.pk}/dynamic/build").status_code == 404
    assert client_for(charlie).get(reverse("executions:dynamic", args=[execution.pk, "build"])).status_code == 404
    assert api.get(f"/api/v1/executions/{execution.pk}/dynamic/nope").status_code == 404


@pytest.mark.worker
def test_a_live_update_carries_only_the_items_that_changed(worker, alice):
    execution = wait_for(start_execution(_workflow(alice), {}), timeout=60)
    events = list(execution.events.order_by("seq"))
    first_finish = next(e for e in events if e.type == "item_finished" and e.payload["item"] == "a")
    html, _seq = render_live_fragments(execution, alice, after=first_finish.seq - 1)
    match = re.search(r'id="dyn-updates" hidden hx-swap-oob="true" data-changes="([^"]*)"', html)
    assert match
    changes = json.loads(match.group(1).replace("&quot;", '"'))["build"]
    assert set(changes) >= {"a", "c", "d"}  # a finished; its dependents c and d are affected
    # Nothing after the last event: no item changes at all.
    html, _seq = render_live_fragments(execution, alice, after=execution.last_seq)
    assert "dyn-updates" not in html


def test_a_dynamic_node_not_started_yet_has_no_items(alice, api):
    workflow = _workflow(alice)
    execution = Execution.objects.create(workflow=workflow, definition=workflow.definition, created_by=alice)
    graph = dynamic_graph(execution, "build")
    assert graph["status"] == "not_started" and graph["items"] == []
    assert api.get(f"/api/v1/executions/{execution.pk}/dynamic/build").json()["status"] == "not_started"


def test_500_items_are_laid_out_in_layers_without_overlap():
    items = [{"id": f"i{n}", "depends_on": [f"i{n // 3}"] if n else []} for n in range(500)]
    positions, width, height = layout(items)
    assert len(positions) == 500 and len(set(positions.values())) == 500
    assert positions["i0"][1] < positions["i1"][1] < positions["i3"][1]  # a dependency sits above its dependents
    assert width < 4000


@pytest.mark.worker
def test_an_item_that_ran_a_child_workflow_opens_that_run(worker, alice):
    suffix = uuid.uuid4().hex[:6]
    create_workflow(owner=alice, name=f"child {suffix}", slug=f"child-{suffix}", definition={
        "format_version": 1, "nodes": [{"id": "say", "type": "activity", "activity": "log", "params": {"message": "hi"}}],
    })
    parent = create_workflow(owner=alice, name=f"parent {suffix}", definition={"format_version": 1, "nodes": [{
        "id": "fan", "type": "dynamic", "workflow": f"child-{suffix}", "input": {"n": "$.item.id"},
        "items": [{"id": "one"}, {"id": "two", "depends_on": ["one"]}],
    }]})
    execution = wait_for(start_execution(parent, {}), timeout=60)
    assert execution.status == "completed", execution.error
    graph = dynamic_graph(execution, "fan")
    child = next(i for i in graph["items"] if i["id"] == "two")["child_execution"]
    assert child and Execution.objects.get(pk=child).parent_id == execution.pk
    response = client_for(alice).get(reverse("executions:dynamic-item", args=[execution.pk, "fan", "two"]))
    assert response.status_code == 302 and response["Location"] == reverse("executions:detail", args=[child])
