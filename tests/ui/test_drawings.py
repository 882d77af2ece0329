"""Read-only canvases: a template's preview, any version of a workflow, and the version compare
drawn as a visual diff (added, removed, changed nodes and edges) beside the field list."""

from __future__ import annotations

import re

import pytest

from apps.templates.services import create_template
from apps.versions.services import versions_of
from apps.workflows import editing
from apps.workflows.services import create_workflow
from tests.ui.conftest import client_for

pytestmark = pytest.mark.django_db

DEFINITION = {
    "format_version": 1,
    "nodes": [
        {"id": "start", "type": "activity", "activity": "log", "params": {"message": "a"}},
        {"id": "middle", "type": "activity", "activity": "log", "params": {"message": "b"}},
        {"id": "end", "type": "activity", "activity": "log", "params": {"message": "c"}},
    ],
    "edges": [{"from": "start", "to": "middle"}, {"from": "middle", "to": "end"}],
}


def test_a_template_preview_is_a_read_only_canvas(alice, charlie):
    template = create_template(owner=alice, name="Three logs", definition=DEFINITION, category="devops")
    html = client_for(alice).get(f"/templates/{template.pk}/").content.decode()
    assert "wb-canvas readonly" in html and 'data-node-id="middle"' in html
    assert 'class="port"' not in html and "canvas-data" not in html  # no editing handles, no definition dump
    assert client_for(charlie).get(f"/templates/{template.pk}/").status_code == 404


def test_the_version_compare_colours_nodes_and_edges(alice, charlie):
    workflow = create_workflow(owner=alice, name="Diffed", definition=DEFINITION)
    editing.apply_operations(workflow, [
        {"op": "delete_node", "node": "end"},
        {"op": "add_node", "type": "timer", "id": "wait", "after": "middle"},
        {"op": "label_edge", "source": "start", "target": "middle", "label": "go"},
    ], acting_user=alice, expected_revision=None)
    html = client_for(alice).get(f"/workflows/{workflow.pk}/versions/").content.decode()
    drawing = html[html.index("data-diff-drawing"):]
    drawing = drawing[: drawing.index("</svg>")]
    assert re.search(r'class="node type-timer diff-added" data-node-id="wait"', drawing)
    assert re.search(r'class="node type-activity diff-removed" data-node-id="end"', drawing)
    assert re.search(r'class="edge kind-edge diff-changed" data-from="start" data-to="middle"', drawing)
    assert re.search(r'class="edge kind-edge diff-added" data-from="middle" data-to="wait"', drawing)
    assert re.search(r'class="edge kind-edge diff-removed" data-from="middle" data-to="end"', drawing)
    assert "node <code>end</code>" in html  # the field list is still beside it

    first = list(versions_of(workflow))[-1]
    shown = client_for(alice).get(f"/workflows/{workflow.pk}/versions/?show={first.pk}").content.decode()
    assert "<h2>Version 1</h2>" in shown and 'data-node-id="end"' in shown
    assert client_for(charlie).get(f"/workflows/{workflow.pk}/versions/?show={first.pk}").status_code == 404


def test_the_workflow_and_execution_graphs_keep_the_canvas_positions(alice):
    definition = {
        "format_version": 1,
        "nodes": [
            {"id": "left", "type": "activity", "activity": "log", "params": {"message": "a"}, "ui": {"x": 0, "y": 0}},
            {"id": "right", "type": "activity", "activity": "log", "params": {"message": "b"}, "ui": {"x": 400, "y": 0}},
        ],
        "edges": [{"from": "left", "to": "right"}],
    }
    workflow = create_workflow(owner=alice, name="Placed", definition=definition)
    html = client_for(alice).get(f"/workflows/{workflow.pk}/").content.decode()
    rects = re.findall(r'data-node-id="(left|right)".*?<rect x="([\d.]+)" y="([\d.]+)"', html, re.S)
    positions = {node: (float(x), float(y)) for node, x, y in rects}
    assert positions["left"][1] == positions["right"][1]  # side by side, as placed (the layered layout would stack them)
    assert positions["right"][0] - positions["left"][0] == 400
