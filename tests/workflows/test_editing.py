"""Definition editing through one service: operations, the revision check (409 for a stale editor),
a version per change, and who may edit (the canvas endpoint and the API alike)."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse
from reversion.models import Version

from apps.sharing.services import share_workflow
from apps.workflows import editing
from apps.workflows.services import create_workflow
from tests.ui.conftest import client_for

pytestmark = pytest.mark.django_db

DEFINITION = {
    "format_version": 1,
    "nodes": [
        {"id": "a", "type": "activity", "activity": "log", "params": {"message": "a"}},
        {"id": "check", "type": "condition", "cases": []},
        {"id": "b", "type": "activity", "activity": "log", "params": {"message": "b"}},
        {"id": "each", "type": "loop", "mode": "for_each", "items": "$.input.xs", "body": {"nodes": [], "edges": []}},
    ],
    "edges": [{"from": "a", "to": "check"}],
}


@pytest.fixture
def workflow(alice):
    return create_workflow(owner=alice, name="Editable", definition=DEFINITION)


def _edit(workflow, user, *ops, revision=None):
    return editing.apply_operations(workflow, list(ops), acting_user=user, expected_revision=revision)


#
# Operations
#


def test_it_adds_moves_connects_labels_and_deletes(workflow, alice):
    w = _edit(workflow, alice, {"op": "add_node", "type": "timer", "x": 10, "y": 20})
    assert w.definition["nodes"][-1] == {"id": "timer", "type": "timer", "duration": 60, "ui": {"x": 10.0, "y": 20.0}}
    w = _edit(w, alice, {"op": "move_node", "node": "timer", "x": 99.44, "y": -5})
    assert w.definition["nodes"][-1]["ui"] == {"x": 99.4, "y": -5.0}
    w = _edit(w, alice, {"op": "connect", "source": "b", "target": "timer", "label": "then"})
    assert {"from": "b", "to": "timer", "label": "then"} in w.definition["edges"]
    w = _edit(w, alice, {"op": "label_edge", "source": "b", "target": "timer", "label": ""})
    assert {"from": "b", "to": "timer"} in w.definition["edges"]
    w = _edit(w, alice, {"op": "delete_node", "node": "timer"})
    assert all(n["id"] != "timer" for n in w.definition["nodes"])
    assert all("timer" not in (e["from"], e["to"]) for e in w.definition["edges"])


def test_connecting_a_condition_sets_its_default_then_adds_cases(workflow, alice):
    w = _edit(workflow, alice, {"op": "connect", "source": "check", "target": "b"})
    check = w.definition["nodes"][1]
    assert check["default"] == "b" and check["cases"] == []
    w = _edit(w, alice, {"op": "add_node", "type": "activity", "activity": "log", "id": "c"}, {"op": "connect", "source": "check", "target": "c", "label": "big"})
    assert w.definition["nodes"][1]["cases"] == [{"when": {}, "to": "c", "label": "big"}]
    w = _edit(w, alice, {"op": "disconnect", "source": "check", "target": "b", "kind": "default"})
    assert "default" not in w.definition["nodes"][1]


def test_a_node_dropped_into_a_loop_goes_into_its_body_and_leaves_its_edges(workflow, alice):
    w = _edit(workflow, alice, {"op": "add_node", "type": "activity", "activity": "log", "id": "inner", "graph": "each.body"})
    assert w.definition["nodes"][3]["body"]["nodes"][0]["id"] == "inner"
    w = _edit(w, alice, {"op": "move_node", "node": "a", "x": 1, "y": 2, "graph": "each.body"})
    loop = next(n for n in w.definition["nodes"] if n["id"] == "each")
    assert [n["id"] for n in loop["body"]["nodes"]] == ["inner", "a"]
    assert "a" not in [n["id"] for n in w.definition["nodes"]]
    assert w.definition["edges"] == []  # a -> check stayed behind with the top level
    with pytest.raises(editing.EditError, match="inside itself"):
        _edit(w, alice, {"op": "move_node", "node": "each", "x": 1, "y": 2, "graph": "each.body"})


@pytest.mark.parametrize(
    ("op", "field", "message"),
    [
        ({"op": "add_node", "type": "nope"}, "type", "unknown node type"),
        ({"op": "add_node", "type": "activity"}, "activity", "choose the activity"),
        ({"op": "add_node", "type": "timer", "id": "a"}, "id", "already exists"),
        ({"op": "add_node", "type": "timer", "id": "9x"}, "id", "letters, digits"),
        ({"op": "connect", "source": "a", "target": "a"}, "target", "own node"),
        ({"op": "connect", "source": "a", "target": "check"}, "target", "already an edge"),
        ({"op": "connect", "source": "a", "target": "ghost"}, "target", "no node 'ghost'"),
        ({"op": "move_node", "node": "a", "x": "left", "y": 1}, "x", "numbers"),
        ({"op": "delete_node", "node": "ghost"}, "node", "no node"),
        ({"op": "explode"}, "op", "unknown operation"),
    ],
)
def test_bad_operations_name_the_field_and_change_nothing(workflow, alice, op, field, message):
    before = Version.objects.get_for_object(workflow).count()
    with pytest.raises(editing.EditError) as info:
        _edit(workflow, alice, op)
    assert info.value.field == field and message in info.value.message
    workflow.refresh_from_db()
    assert workflow.definition == DEFINITION
    assert Version.objects.get_for_object(workflow).count() == before


def test_several_operations_are_one_version_all_or_nothing(workflow, alice):
    before = Version.objects.get_for_object(workflow).count()
    _edit(workflow, alice, {"op": "add_node", "type": "timer", "id": "t1"}, {"op": "connect", "source": "b", "target": "t1"})
    assert Version.objects.get_for_object(workflow).count() == before + 1
    with pytest.raises(editing.EditError, match="operation 2"):
        _edit(workflow, alice, {"op": "add_node", "type": "timer", "id": "t2"}, {"op": "delete_node", "node": "ghost"})
    workflow.refresh_from_db()
    assert "t2" not in editing.all_node_ids(workflow.definition)


#
# Revisions
#


def test_a_stale_revision_is_a_conflict_and_saves_nothing(workflow, alice, bob):
    stale = editing.revision_of(workflow)
    fresh = _edit(workflow, alice, {"op": "move_node", "node": "a", "x": 5, "y": 5}, revision=stale)
    assert editing.revision_of(fresh) != stale
    with pytest.raises(editing.EditConflict) as info:
        _edit(workflow, bob, {"op": "delete_node", "node": "a"}, revision=stale)
    assert info.value.current_revision == editing.revision_of(fresh)
    fresh.refresh_from_db()
    assert "a" in editing.all_node_ids(fresh.definition)


def test_the_edits_endpoint_answers_409_to_a_stale_editor(api, workflow):
    revision = api.get(f"/api/v1/workflows/{workflow.pk}").json()["revision"]
    ok = api.post(f"/api/v1/workflows/{workflow.pk}/edits", {"revision": revision, "ops": [{"op": "add_node", "type": "timer"}]}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["revision"] != revision and ok.json()["definition"]["nodes"][-1]["id"] == "timer"
    stale = api.post(f"/api/v1/workflows/{workflow.pk}/edits", {"revision": revision, "ops": [{"op": "delete_node", "node": "timer"}]}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "conflict" and "Someone else saved" in stale.json()["detail"]
    bad = api.post(f"/api/v1/workflows/{workflow.pk}/edits", {"ops": [{"op": "delete_node", "node": "ghost"}]}, format="json")
    assert bad.status_code == 400 and "no node 'ghost'" in bad.json()["node"][0]


def test_a_patch_with_a_stale_expected_revision_is_a_conflict(api, workflow):
    revision = api.get(f"/api/v1/workflows/{workflow.pk}").json()["revision"]
    assert api.patch(f"/api/v1/workflows/{workflow.pk}", {"description": "one", "expected_revision": revision}, format="json").status_code == 200
    response = api.patch(f"/api/v1/workflows/{workflow.pk}", {"description": "two", "expected_revision": revision}, format="json")
    assert response.status_code == 409
    workflow.refresh_from_db()
    assert workflow.description == "one"


def test_strangers_and_viewers_cannot_edit(workflow, api_as, bob, charlie):
    url = f"/api/v1/workflows/{workflow.pk}/edits"
    body = {"ops": [{"op": "delete_node", "node": "a"}]}
    assert api_as(charlie).post(url, body, format="json").status_code == 404
    share_workflow(workflow, bob, "view", acting_user=workflow.owner)
    assert api_as(bob).post(url, body, format="json").status_code == 403
    canvas = reverse("workflows:canvas", args=[workflow.pk])
    assert client_for(charlie).get(canvas).status_code == 404
    assert client_for(charlie).post(canvas, json.dumps(body), content_type="application/json").status_code == 404
    assert client_for(bob).post(canvas, json.dumps(body), content_type="application/json").status_code == 403
    viewer = client_for(bob).get(canvas)
    assert viewer.status_code == 200 and b"editable" not in viewer.content and b'data-node-id="a"' in viewer.content
    workflow.refresh_from_db()
    assert workflow.definition == DEFINITION


def test_the_canvas_endpoint_answers_the_redrawn_canvas_or_a_conflict(workflow, alice):
    client = client_for(alice)
    url = reverse("workflows:canvas", args=[workflow.pk])
    revision = editing.revision_of(workflow)
    response = client.post(url, json.dumps({"revision": revision, "ops": [{"op": "add_node", "type": "timer", "x": 1, "y": 2}]}), content_type="application/json")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-node-id="timer"' in html and 'transform="translate(1.0,2.0)"' in html
    stale = client.post(url, json.dumps({"revision": revision, "ops": [{"op": "delete_node", "node": "timer"}]}), content_type="application/json")
    assert stale.status_code == 409 and "Someone else saved" in stale.json()["detail"]


def test_the_editor_forms_refuse_a_stale_revision(workflow, alice):
    client = client_for(alice)
    stale = editing.revision_of(workflow)
    _edit(workflow, alice, {"op": "move_node", "node": "a", "x": 5, "y": 5})
    response = client.post(reverse("workflows:node-delete", args=[workflow.pk, "b"]), {"revision": stale}, follow=True)
    assert "Someone else saved this workflow" in response.content.decode()
    workflow.refresh_from_db()
    assert "b" in editing.all_node_ids(workflow.definition)
    # Without a revision (an old client, a script) the form still saves.
    client.post(reverse("workflows:node-delete", args=[workflow.pk, "b"]))
    workflow.refresh_from_db()
    assert "b" not in editing.all_node_ids(workflow.definition)


def test_the_settings_form_refuses_a_stale_revision_and_offers_to_save_over_it(workflow, alice):
    client = client_for(alice)
    stale = editing.revision_of(workflow)
    _edit(workflow, alice, {"op": "move_node", "node": "a", "x": 5, "y": 5})
    url = reverse("workflows:settings", args=[workflow.pk])
    response = client.post(url, {"revision": stale, "name": "Renamed", "description": "", "tags": ""})
    assert response.status_code == 409 and "Someone else saved this workflow" in response.content.decode()
    workflow.refresh_from_db()
    assert workflow.name == "Editable"
    fresh = re.search(r'name="revision" value="(\d+)"', response.content.decode()).group(1)
    assert fresh == editing.revision_of(workflow)
    assert client.post(url, {"revision": fresh, "name": "Renamed", "description": "", "tags": ""}).status_code == 302
    workflow.refresh_from_db()
    assert workflow.name == "Renamed" and workflow.definition["nodes"][0]["ui"] == {"x": 5.0, "y": 5.0}


def test_a_stale_node_form_keeps_what_was_typed_and_saves_over_on_purpose(workflow, alice):
    client = client_for(alice)
    stale = editing.revision_of(workflow)
    _edit(workflow, alice, {"op": "move_node", "node": "a", "x": 7, "y": 8})
    url = reverse("workflows:node", args=[workflow.pk, "a"])
    body = {"id": "a", "activity": "log", "param__message": "typed", "param__level": "info", "revision": stale}
    response = client.post(url, body)
    html = response.content.decode()
    assert response.status_code == 409 and "Someone else saved this workflow" in html and "typed" in html
    workflow.refresh_from_db()
    assert workflow.definition["nodes"][0]["params"] == {"message": "a"}
    fresh = re.search(r'name="revision" value="(\d+)"', html).group(1)
    assert client.post(url, {**body, "revision": fresh}).status_code == 302
    workflow.refresh_from_db()
    node = workflow.definition["nodes"][0]
    assert node["params"]["message"] == "typed" and node["ui"] == {"x": 7.0, "y": 8.0}  # the form keeps the canvas placement
