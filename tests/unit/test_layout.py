"""Plain unit tests of the layered graph layout and its SVG rendering (no database)."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from itertools import pairwise

import pytest

from apps.workflows.definition.layout import STATUSES, Layout, compute_layout, render_svg

SVG = "{http://www.w3.org/2000/svg}"

ORDER_FLOW = (
    [
        {"id": "start", "type": "trigger", "label": "Order received"},
        {"id": "check", "type": "condition", "label": "Total > 5000?"},
        {"id": "approve", "type": "approval", "label": "Manager approval"},
        {"id": "charge", "type": "activity", "label": "Charge card"},
        {"id": "loop", "type": "loop", "label": "For each line item"},
        {"id": "reserve", "type": "activity", "label": "Reserve stock"},
        {"id": "notify", "type": "activity", "label": "Notify customer"},
        {"id": "par", "type": "parallel", "label": "Ship & invoice"},
        {"id": "ship", "type": "activity"},
        {"id": "invoice", "type": "activity"},
        {"id": "end", "type": "end"},
    ],
    [
        {"from": "start", "to": "check"},
        {"from": "check", "to": "approve", "label": "yes"},
        {"from": "check", "to": "charge", "label": "no"},
        {"from": "approve", "to": "charge"},
        {"from": "charge", "to": "loop"},
        {"from": "loop", "to": "reserve"},
        {"from": "reserve", "to": "loop", "label": "next"},
        {"from": "loop", "to": "par", "label": "done"},
        {"from": "par", "to": "ship"},
        {"from": "par", "to": "invoice"},
        {"from": "ship", "to": "end"},
        {"from": "invoice", "to": "end"},
        {"from": "start", "to": "notify"},
        {"from": "notify", "to": "end"},
    ],
)


def random_workflow(n: int, seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    nodes = [{"id": f"n{i}", "type": "activity", "label": f"Step {i}"} for i in range(n)]
    edges = []
    for i in range(1, n):
        for j in rng.sample(range(i), min(i, rng.randint(1, 3))):
            edges.append({"from": f"n{j}", "to": f"n{i}"})
    return nodes, edges


def assert_no_overlap(layout: Layout) -> None:
    by_layer: dict[int, list] = {}
    for box in layout.nodes:
        by_layer.setdefault(box.layer, []).append(box)
        assert 0 <= box.x and box.right <= layout.width
        assert 0 <= box.y and box.bottom <= layout.height
    for boxes in by_layer.values():
        boxes.sort(key=lambda b: b.x)
        assert len({b.y for b in boxes}) == 1
        for left, right in pairwise(boxes):
            assert left.right < right.x, f"{left.id} overlaps {right.id}"


def crosses_box(p: tuple[float, float], q: tuple[float, float], box, inset: float = 1.0) -> bool:
    """Liang-Barsky: does segment pq enter the box shrunk by `inset`?"""
    x0, y0, x1, y1 = box.x + inset, box.y + inset, box.right - inset, box.bottom - inset
    dx, dy = q[0] - p[0], q[1] - p[1]
    lo, hi = 0.0, 1.0
    for edge_p, edge_q in ((-dx, p[0] - x0), (dx, x1 - p[0]), (-dy, p[1] - y0), (dy, y1 - p[1])):
        if edge_p == 0:
            if edge_q < 0:
                return False
        else:
            t = edge_q / edge_p
            if edge_p < 0:
                lo = max(lo, t)
            else:
                hi = min(hi, t)
    return lo < hi


#
# Layout
#


def test_it_layers_by_longest_path_and_draws_back_edges_upwards():
    layout = compute_layout(*ORDER_FLOW)
    layer = {b.id: b.layer for b in layout.nodes}
    assert layer["start"] == 0 and layer["check"] == 1 and layer["approve"] == 2
    # charge waits for approve, so it sits below it although check links to it directly.
    assert layer["charge"] == 3
    assert layer["reserve"] == layer["loop"] + 1
    assert layer["end"] == max(layer.values())
    back = [e for e in layout.edges if e.back]
    assert [(e.source, e.target) for e in back] == [("reserve", "loop")]


def test_boxes_in_a_layer_never_overlap():
    assert_no_overlap(compute_layout(*ORDER_FLOW))
    for seed in range(5):
        assert_no_overlap(compute_layout(*random_workflow(60, seed)))


def test_edges_run_from_the_bottom_of_their_source_to_the_top_of_their_target():
    layout = compute_layout(*ORDER_FLOW)
    for edge in layout.edges:
        source, target = layout.node(edge.source), layout.node(edge.target)
        (x0, y0), (x1, y1) = edge.points[0], edge.points[-1]
        assert source.x <= x0 <= source.right and target.x <= x1 <= target.right
        if edge.back:
            assert (y0, y1) == (source.y, target.bottom)
        else:
            assert (y0, y1) == (source.bottom, target.y)
    assert {(e.source, e.target) for e in layout.edges} == {(e["from"], e["to"]) for e in ORDER_FLOW[1]}


def test_edges_route_around_the_boxes_they_do_not_connect():
    for nodes, edges in (ORDER_FLOW, random_workflow(40, 1)):
        layout = compute_layout(nodes, edges)
        for edge in layout.edges:
            others = [b for b in layout.nodes if b.id not in (edge.source, edge.target)]
            for p, q in pairwise(edge.points):
                hit = [b.id for b in others if crosses_box(p, q, b)]
                assert not hit, f"{edge.source}->{edge.target} crosses {hit}"


def test_barycenter_ordering_removes_an_avoidable_crossing():
    nodes = [{"id": i, "type": "activity"} for i in ("a", "b", "c", "d")]
    edges = [{"from": "a", "to": "d"}, {"from": "b", "to": "c"}]
    layout = compute_layout(nodes, edges)
    assert layout.node("a").x < layout.node("b").x
    assert layout.node("d").x < layout.node("c").x


def test_a_chain_is_drawn_straight_down():
    nodes = [{"id": f"s{i}", "type": "activity"} for i in range(4)]
    edges = [{"from": f"s{i}", "to": f"s{i + 1}"} for i in range(3)]
    layout = compute_layout(nodes, edges)
    assert len({b.x for b in layout.nodes}) == 1
    assert [b.layer for b in layout.nodes] == [0, 1, 2, 3]


def test_cycles_self_loops_and_dangling_edges_do_not_crash():
    nodes = [{"id": i, "type": "activity"} for i in ("a", "b", "c")]
    edges = [
        {"from": "a", "to": "b"},
        {"from": "b", "to": "c"},
        {"from": "c", "to": "a"},
        {"from": "c", "to": "c"},
        {"from": "c", "to": "nowhere"},
    ]
    layout = compute_layout(nodes, edges)
    assert [b.layer for b in layout.nodes] == [0, 1, 2]
    assert len(layout.edges) == 4
    loop = next(e for e in layout.edges if e.source == e.target)
    assert len(loop.points) == 4 and max(x for x, _ in loop.points) <= layout.width
    # Every node is in a cycle: no start node, still laid out.
    assert len(compute_layout(nodes[:2], [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]).nodes) == 2


def test_it_rejects_nodes_without_ids_and_duplicates():
    with pytest.raises(ValueError, match="node #0 has no id"):
        compute_layout([{"type": "activity"}], [])
    with pytest.raises(ValueError, match="duplicate node id 'a'"):
        compute_layout([{"id": "a"}, {"id": "a"}], [])


def test_an_empty_graph_has_an_empty_layout():
    layout = compute_layout([], [])
    assert layout.nodes == [] and layout.edges == [] and layout.width > 0
    ET.fromstring(render_svg(layout))


def test_a_large_graph_lays_out():
    layout = compute_layout(*random_workflow(400, 9))
    assert len(layout.nodes) == 400
    assert_no_overlap(layout)


def test_the_same_input_gives_the_same_layout_and_svg():
    first = compute_layout(*ORDER_FLOW)
    second = compute_layout(*ORDER_FLOW)
    assert first == second
    statuses = {"start": "completed", "check": "running"}
    assert render_svg(first, statuses) == render_svg(second, statuses)


#
# SVG
#


def test_the_svg_is_an_accessible_standalone_image():
    svg = render_svg(compute_layout(*ORDER_FLOW), title="Order flow")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Order flow"
    assert root.find(f"{SVG}desc").text.startswith("11 steps, 14 connections. Steps: Order received (trigger);")
    assert ".node.status-failed" in root.find(f"{SVG}style").text
    nodes = root.findall(f".//{SVG}g[@data-node-id]")
    assert [g.get("data-node-id") for g in nodes] == [n["id"] for n in ORDER_FLOW[0]]
    first = nodes[0]
    assert first.find(f"{SVG}rect").get("rx") == "8"
    assert [t.text for t in first.findall(f"{SVG}text")] == ["Order received", "trigger"]
    edges = root.findall(f".//{SVG}g[@data-from]")
    assert len(edges) == 14
    assert all(e.find(f"{SVG}path").get("marker-end") == "url(#wbg-arrow)" for e in edges)
    assert sorted(t.text for t in root.iter(f"{SVG}text") if t.get("class") == "edge-label") == [
        "done",
        "next",
        "no",
        "yes",
    ]


def test_every_piece_of_user_text_is_escaped():
    nodes = [
        {"id": 'x"><script>alert(1)</script>', "type": "<b>activity</b>", "label": "<script>alert('hi')</script> & co"},
        {"id": "y", "type": "activity", "label": "bad\x00control\x1bchars"},
    ]
    edges = [{"from": nodes[0]["id"], "to": "y", "label": "<img src=x onerror=alert(1)>"}]
    svg = render_svg(
        compute_layout(nodes, edges),
        statuses={nodes[0]["id"]: "completed"},
        link_prefix="/nodes/?id=",
        title="<Evil> title",
    )
    assert "<script" not in svg and "<img" not in svg and "<b>" not in svg
    assert "&lt;script&gt;alert(&#x27;hi&#x27;)&lt;/script&gt; &amp; co" in svg
    root = ET.fromstring(svg)  # still well-formed XML
    ids = [g.get("data-node-id") for g in root.iter(f"{SVG}g") if g.get("data-node-id")]
    assert ids == [nodes[0]["id"], "y"]
    link = root.find(f".//{SVG}a")
    assert link.get("href") == "/nodes/?id=x%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E"
    assert root.find(f"{SVG}title").text == "<Evil> title"


def test_status_highlight_and_diff_become_classes():
    layout = compute_layout(*ORDER_FLOW)
    svg = render_svg(
        layout,
        statuses={"start": "completed", "check": "failed", "approve": "exploded"},
        highlight={"start", "check"},
        diff={"charge": "changed", "notify": "added", "end": "bogus"},
    )
    root = ET.fromstring(svg)
    classes = {g.get("data-node-id"): g.get("class") for g in root.iter(f"{SVG}g") if g.get("data-node-id")}
    assert classes["start"] == "node status-completed highlight"
    assert classes["check"] == "node status-failed highlight"
    assert classes["approve"] == "node status-unknown"
    assert classes["charge"] == "node status-pending diff-changed"
    assert classes["notify"] == "node status-pending diff-added"
    assert classes["end"] == "node status-pending"
    edge_classes = {
        (g.get("data-from"), g.get("data-to")): g.get("class") for g in root.iter(f"{SVG}g") if g.get("data-from")
    }
    assert edge_classes[("start", "check")] == "edge highlight"
    assert edge_classes[("reserve", "loop")] == "edge back"
    # Without statuses (the editor) nodes carry no status class.
    plain = ET.fromstring(render_svg(layout))
    assert {g.get("class") for g in plain.iter(f"{SVG}g") if g.get("data-node-id")} == {"node"}


def test_every_status_has_a_default_style():
    svg = render_svg(compute_layout([{"id": "a", "type": "activity"}], []), statuses={"a": "queued"})
    for status in STATUSES:
        assert f".node.status-{status})" in svg


def test_long_labels_are_shortened_but_kept_whole_in_the_tooltip():
    label = "A very long step name that would never fit inside the box"
    root = ET.fromstring(render_svg(compute_layout([{"id": "a", "type": "activity", "label": label}], [])))
    node = root.find(f".//{SVG}g[@data-node-id='a']")
    shown = node.findall(f"{SVG}text")[0].text
    assert shown.endswith("\u2026") and len(shown) < len(label)
    assert node.find(f"{SVG}title").text == f"{label} (activity)"


def test_id_prefix_keeps_element_ids_apart():
    svg = render_svg(compute_layout(*ORDER_FLOW), id_prefix="before graph")
    assert 'id="before-graph-arrow"' in svg and "url(#before-graph-arrow)" in svg
