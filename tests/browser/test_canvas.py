"""The canvas editor in a real browser: build a workflow on an empty canvas by dragging (palette,
ports), move a node and find it there after a reload, delete with the key, undo and redo, label a
connection; two editors on one workflow and the stale one gets the conflict message; a stranger
gets no canvas at all."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from apps.workflows.models import Workflow
from apps.workflows.services import create_workflow

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


@pytest.fixture
def alice_user(server):
    return User.objects.create_user("alice", "alice@example.com", "alice-password-1")


@pytest.fixture
def charlie_user(server):
    return User.objects.create_user("charlie", "charlie@example.com", "charlie-password-1")


def _center(locator) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _drag(page, source, to: tuple[float, float]) -> None:
    x, y = _center(source)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 5, y + 5, steps=2)
    page.mouse.move(to[0], to[1], steps=8)
    page.mouse.up()


def _canvas_point(page, fx: float, fy: float) -> tuple[float, float]:
    box = page.locator("svg.wb-canvas").bounding_box()
    return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy


def _node(page, node_id: str):
    return page.locator(f"svg.wb-canvas .node[data-node-id='{node_id}']")


def _saved(page, text: str) -> None:
    expect(page.locator(".canvas-status")).to_contain_text(text)
    expect(page.locator("#canvas-editor")).not_to_have_class(re.compile("saving"))


def _definition(workflow: Workflow) -> dict:
    workflow.refresh_from_db()
    return workflow.definition


def test_build_a_workflow_by_dragging_then_undo_and_redo(new_page, alice_user):
    workflow = create_workflow(owner=alice_user, name="Canvas built")
    page = new_page()
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/workflows/{workflow.pk}/edit/")
    expect(page.locator("#canvas-editor.canvas-ready")).to_be_visible()

    # Three nodes from the palette: two log activities and a condition.
    _drag(page, page.locator(".palette-item[data-node-type='activity']"), _canvas_point(page, 0.3, 0.15))
    _saved(page, "Added a activity node")
    expect(_node(page, "log")).to_be_visible()
    _drag(page, page.locator(".palette-item[data-node-type='condition']"), _canvas_point(page, 0.3, 0.5))
    _saved(page, "Added a condition node")
    _drag(page, page.locator(".palette-item[data-node-type='activity']"), _canvas_point(page, 0.6, 0.8))
    expect(_node(page, "log_2")).to_be_visible()
    nodes = _definition(workflow)["nodes"]
    assert [(n["id"], n["type"]) for n in nodes] == [("log", "activity"), ("condition", "condition"), ("log_2", "activity")]
    assert all(isinstance(n["ui"]["x"], (int, float)) for n in nodes)

    # Two connections, each dragged from a node's port: log -> condition, condition -> log_2.
    _drag(page, _node(page, "log").locator(".port"), _center(_node(page, "condition")))
    _saved(page, "Connected log → condition")
    _drag(page, _node(page, "condition").locator(".port"), _center(_node(page, "log_2")))
    _saved(page, "Connected condition → log_2")
    definition = _definition(workflow)
    assert definition["edges"] == [{"from": "log", "to": "condition"}]
    assert definition["nodes"][1]["default"] == "log_2"
    expect(page.locator("svg.wb-canvas .edge[data-from='log'][data-to='condition']")).to_have_count(1)
    # The forms below follow the canvas.
    expect(page.locator("#node-log_2")).to_be_visible()

    # Label the edge.
    page.locator("svg.wb-canvas .edge[data-from='log'][data-to='condition'] path.hit").click(force=True)
    page.get_by_role("button", name="Edit label").click()
    page.get_by_label("Label of the selected connection").fill("checked")
    page.get_by_role("button", name="Save label").click()
    _saved(page, "Labelled log → condition")
    assert _definition(workflow)["edges"] == [{"from": "log", "to": "condition", "label": "checked"}]
    screenshot(page, "canvas-editor")

    # Undo takes the label back off, redo puts it on again; each is a version of its own.
    page.get_by_role("button", name="Undo").click()
    _saved(page, "Undone.")
    assert _definition(workflow)["edges"] == [{"from": "log", "to": "condition"}]
    page.keyboard.press("Control+Shift+Z")
    _saved(page, "Redone.")
    assert _definition(workflow)["edges"] == [{"from": "log", "to": "condition", "label": "checked"}]


def test_a_moved_node_stays_where_it_was_dropped_and_delete_removes_it(new_page, alice_user):
    workflow = create_workflow(
        owner=alice_user, name="Move me",
        definition={"format_version": 1, "nodes": [
            {"id": "first", "type": "activity", "activity": "log", "params": {"message": "a"}},
            {"id": "second", "type": "activity", "activity": "log", "params": {"message": "b"}},
        ], "edges": [{"from": "first", "to": "second"}]},
    )
    page = new_page()
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/workflows/{workflow.pk}/edit/")
    expect(page.locator("#canvas-editor.canvas-ready")).to_be_visible()
    before = _node(page, "second").get_attribute("transform")
    x, y = _center(_node(page, "second"))
    _drag(page, _node(page, "second").locator(".node-label"), (x + 150, y + 40))
    _saved(page, "Moved second")
    ui = next(n for n in _definition(workflow)["nodes"] if n["id"] == "second")["ui"]
    after = _node(page, "second").get_attribute("transform")
    assert after != before and after == f"translate({ui['x']:.1f},{ui['y']:.1f})"

    page.reload()
    expect(_node(page, "second")).to_have_attribute("transform", after)

    # From the keyboard: focus the node, nudge it with the arrow keys; one change is saved.
    _node(page, "second").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    _saved(page, "Moved second.")
    moved = next(n for n in _definition(workflow)["nodes"] if n["id"] == "second")["ui"]
    assert moved == {"x": ui["x"] + 10, "y": ui["y"] + 50}

    # Select with a click, delete with the key: the node and its edge go.
    _node(page, "second").locator(".node-label").click()
    page.keyboard.press("Delete")
    _saved(page, "Deleted node second")
    expect(_node(page, "second")).to_have_count(0)
    definition = _definition(workflow)
    assert [n["id"] for n in definition["nodes"]] == ["first"] and definition["edges"] == []
    page.keyboard.press("Control+Z")
    _saved(page, "Undone.")
    expect(_node(page, "second")).to_be_visible()
    assert len(_definition(workflow)["nodes"]) == 2


def test_a_stale_editor_gets_the_conflict_message_and_overwrites_nothing(new_page, alice_user):
    workflow = create_workflow(
        owner=alice_user, name="Two editors",
        definition={"format_version": 1, "nodes": [{"id": "only", "type": "activity", "activity": "log", "params": {"message": "a"}}], "edges": []},
    )
    first, second = new_page(), new_page()
    for page in (first, second):
        log_in(page, "alice", "alice-password-1")
        page.goto(f"/workflows/{workflow.pk}/edit/")
        expect(page.locator("#canvas-editor.canvas-ready")).to_be_visible()

    x, y = _center(_node(first, "only"))
    _drag(first, _node(first, "only").locator(".node-label"), (x + 120, y))
    _saved(first, "Moved only")
    saved = _definition(workflow)

    # The second page still shows the old revision: its change is refused, with a message.
    _drag(second, second.locator(".palette-item[data-node-type='timer']"), _canvas_point(second, 0.5, 0.7))
    expect(second.get_by_role("alert").filter(has_text="Someone else saved this workflow")).to_be_visible()
    assert _definition(workflow) == saved
    screenshot(second, "canvas-conflict")

    # The editor's forms carry the revision too: a stale form is refused the same way.
    second.get_by_role("button", name="Delete node only").click()
    expect(second.locator(".messages-wrap")).to_contain_text("Someone else saved this workflow")
    assert _definition(workflow) == saved

    # The version compare draws the move as a changed node, beside the field list.
    first.goto(f"/workflows/{workflow.pk}/versions/")
    expect(first.locator("[data-diff-drawing] .node.diff-changed[data-node-id='only']")).to_be_visible()
    expect(first.locator(".collab-diff")).to_contain_text("ui")
    screenshot(first, "version-diff")


def test_zoom_pan_and_fit_change_only_the_view(new_page, alice_user):
    nodes = [{"id": f"n{i}", "type": "activity", "activity": "log", "params": {"message": "x"}} for i in range(210)]
    edges = [{"from": f"n{i // 2}", "to": f"n{i}"} for i in range(1, 210)]
    workflow = create_workflow(owner=alice_user, name="Big", definition={"format_version": 1, "nodes": nodes, "edges": edges})
    page = new_page()
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/workflows/{workflow.pk}/edit/")
    expect(page.locator("#canvas-editor.canvas-ready")).to_be_visible()
    expect(page.locator("svg.wb-canvas .node")).to_have_count(210)
    svg = page.locator("svg.wb-canvas")
    fitted = svg.get_attribute("viewBox")
    page.get_by_role("button", name="Zoom in").click()
    zoomed = svg.get_attribute("viewBox")
    assert float(zoomed.split()[2]) < float(fitted.split()[2])
    x, y = _canvas_point(page, 0.5, 0.02)
    page.mouse.move(x, y)
    page.mouse.wheel(0, 300)
    assert float(svg.get_attribute("viewBox").split()[2]) > float(zoomed.split()[2])
    page.get_by_role("button", name="Fit").click()
    expect(svg).to_have_attribute("viewBox", re.compile(re.escape(" ".join(fitted.split()[2:]))))
    screenshot(page, "canvas-200-nodes")
    # Nothing was saved by looking around.
    assert "ui" not in _definition(workflow)["nodes"][0]


def test_nodes_dropped_on_a_loops_container_go_into_its_body(new_page, alice_user):
    workflow = create_workflow(
        owner=alice_user, name="Containers",
        definition={"format_version": 1, "nodes": [
            {"id": "each", "type": "loop", "mode": "for_each", "items": "$.input.xs", "body": {"nodes": [], "edges": []}},
            {"id": "after", "type": "activity", "activity": "log", "params": {"message": "done"}},
        ], "edges": [{"from": "each", "to": "after"}]},
    )
    page = new_page()
    log_in(page, "alice", "alice-password-1")
    page.goto(f"/workflows/{workflow.pk}/edit/")
    expect(page.locator("#canvas-editor.canvas-ready")).to_be_visible()
    zone = page.locator("svg.wb-canvas .container[data-graph='each.body']")
    expect(zone).to_contain_text("drop nodes here")
    _drag(page, page.locator(".palette-item[data-node-type='timer']"), _center(zone.locator("rect")))
    _saved(page, "Added a timer node to each.body")
    loop = _definition(workflow)["nodes"][0]
    assert [n["id"] for n in loop["body"]["nodes"]] == ["timer"]
    expect(_node(page, "timer")).to_have_attribute("data-graph", "each.body")

    # Drag an existing node into the body: it moves there, leaving its top-level edge behind.
    _drag(page, _node(page, "after").locator(".node-label"), _center(page.locator("svg.wb-canvas .container[data-graph='each.body'] rect")))
    _saved(page, "into each.body")
    definition = _definition(workflow)
    assert [n["id"] for n in definition["nodes"][0]["body"]["nodes"]] == ["timer", "after"]
    assert definition["edges"] == []


def test_a_stranger_gets_no_canvas(new_page, alice_user, charlie_user):
    workflow = create_workflow(owner=alice_user, name="Private")
    page = new_page()
    log_in(page, "charlie", "charlie-password-1")
    assert page.goto(f"/workflows/{workflow.pk}/edit/").status == 404
    assert page.goto(f"/workflows/{workflow.pk}/canvas/").status == 404
    response = page.request.post(f"/workflows/{workflow.pk}/canvas/", data={"ops": [{"op": "delete_node", "node": "x"}]})
    assert response.status in (403, 404)
    assert _definition(workflow)["nodes"] == []
