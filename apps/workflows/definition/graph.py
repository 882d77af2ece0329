"""A definition as a graph: walking its nodes (nested bodies and branches included), its edges
for drawing, and the cached layered layout drawn as inline SVG.

Plain functions over definition data (drafts included: what should be a list and is not counts as
empty); the builder, the execution pages, the version diff and the comments all draw through these.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from functools import lru_cache
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from .layout import EdgeRoute, Layout, compute_layout, render_svg


def iter_nodes(
    nodes: Iterable[dict], parent: str | None = None, where: str = ""
) -> Iterator[tuple[dict, str | None, str]]:
    """Every node of a definition, nested ones included: (node, container id, where label)."""
    for node in _list(nodes):
        if not isinstance(node, dict):
            continue
        yield node, parent, where
        node_id = str(node.get("id", ""))
        body = node.get("body")
        if isinstance(body, dict):
            yield from iter_nodes(body.get("nodes", []), node_id, f"body of {node_id}")
        for i, branch in enumerate(_list(node.get("branches"))):
            if isinstance(branch, dict):
                yield from iter_nodes(branch.get("nodes", []), node_id, f"branch {i + 1} of {node_id}")


def find_node(definition: dict, node_id: str) -> dict | None:
    for node, _parent, _where in iter_nodes(definition.get("nodes", [])):
        if node.get("id") == node_id:
            return node
    return None


def _list(value: Any) -> list:
    """A definition is drawn even while it is malformed (a draft): what should be a list and is not counts as empty."""
    return value if isinstance(value, list) else []


def graph_edges(
    nodes: Any, edges: Any, out_nodes: list[dict], out_edges: list[dict], seen: set[str] | None = None
) -> None:
    """Flatten one graph (and the graphs nested in it) into drawable nodes and edges; links that
    do not name a node (a draft's half-typed fields) are left out."""
    seen = set() if seen is None else seen
    for node in _list(nodes):
        if not isinstance(node, dict) or not node.get("id"):
            continue
        node_id = str(node["id"])
        if node_id in seen:
            continue  # a duplicate id (the validator reports it): draw the first
        seen.add(node_id)
        node_type = str(node.get("type", ""))
        kind = f"{node_type}: {node['activity']}" if node_type == "activity" and node.get("activity") else node_type
        out_nodes.append({"id": node_id, "type": kind, "label": str(node.get("name") or node_id)})
        if node_type == "condition":
            for i, case in enumerate(_list(node.get("cases"))):
                if isinstance(case, dict) and isinstance(case.get("to"), str) and case["to"]:
                    out_edges.append(
                        {"from": node_id, "to": case["to"], "label": str(case.get("label") or f"case {i + 1}")}
                    )
            if isinstance(node.get("default"), str) and node["default"]:
                out_edges.append({"from": node_id, "to": node["default"], "label": "default"})
        if isinstance(node.get("on_error"), str) and node["on_error"]:
            out_edges.append({"from": node_id, "to": node["on_error"], "label": "on error"})
        routes = node.get("routes")
        if isinstance(routes, dict):  # approvals: decision -> next node
            for decision, target in routes.items():
                if isinstance(target, str) and target:
                    out_edges.append({"from": node_id, "to": target, "label": str(decision)})
        if isinstance(node.get("timeout_to"), str) and node["timeout_to"]:
            out_edges.append({"from": node_id, "to": node["timeout_to"], "label": "timeout"})
        body = node.get("body")
        if isinstance(body, dict) and _list(body.get("nodes")):
            entry = body["nodes"][0]
            if isinstance(entry, dict) and entry.get("id"):
                out_edges.append({"from": node_id, "to": entry["id"], "label": "body"})
            graph_edges(body.get("nodes", []), body.get("edges", []), out_nodes, out_edges, seen)
        for i, branch in enumerate(_list(node.get("branches"))):
            if isinstance(branch, dict) and _list(branch.get("nodes")):
                entry = branch["nodes"][0]
                if isinstance(entry, dict) and entry.get("id"):
                    out_edges.append({"from": node_id, "to": entry["id"], "label": f"branch {i + 1}"})
                graph_edges(branch.get("nodes", []), branch.get("edges", []), out_nodes, out_edges, seen)
    for edge in _list(edges):
        if (
            isinstance(edge, dict)
            and isinstance(edge.get("from"), str)
            and isinstance(edge.get("to"), str)
            and edge["from"]
            and edge["to"]
        ):
            label = edge.get("label")
            out_edges.append({"from": edge["from"], "to": edge["to"], "label": None if label is None else str(label)})


@lru_cache(maxsize=256)
def layout_for(text: str):
    """The layered layout of a definition; nodes the canvas placed (a `ui` with x and y) are drawn
    where the builder put them, so the workflow and execution pages look like the canvas."""
    definition = json.loads(text)
    nodes: list[dict] = []
    edges: list[dict] = []
    graph_edges(definition.get("nodes", []), definition.get("edges", []), nodes, edges)
    layout = compute_layout(nodes, edges)
    placed: dict[str, tuple[float, float]] = {}
    for node, _parent, _where in iter_nodes(definition.get("nodes", [])):
        ui = node.get("ui")
        if isinstance(ui, dict) and all(
            isinstance(ui.get(k), (int, float)) and not isinstance(ui.get(k), bool) for k in ("x", "y")
        ):
            placed.setdefault(str(node.get("id")), (float(ui["x"]), float(ui["y"])))
    return _placed(layout, placed) if placed else layout


def _placed(layout: Layout, placed: dict[str, tuple[float, float]], margin: float = 24.0) -> Layout:
    """`layout` with the boxes in `placed` moved there, edges drawn straight between the ports."""
    boxes = [replace(b, x=placed[b.id][0], y=placed[b.id][1]) if b.id in placed else b for b in layout.nodes]
    if not boxes:
        return layout
    dx = margin - min(b.x for b in boxes)
    dy = margin - min(b.y for b in boxes)
    boxes = [replace(b, x=round(b.x + dx, 1), y=round(b.y + dy, 1)) for b in boxes]
    by_id = {b.id: b for b in boxes}
    routes = []
    for edge in layout.edges:
        a, b = by_id.get(edge.source), by_id.get(edge.target)
        if a is None or b is None:
            continue
        start, end = (a.center_x, a.bottom), (b.center_x, b.y)
        middle = (round((start[0] + end[0]) / 2, 1), round((start[1] + end[1]) / 2, 1))
        routes.append(
            EdgeRoute(
                source=edge.source,
                target=edge.target,
                points=[start, end],
                label=edge.label,
                back=False,
                label_at=middle,
            )
        )
    width = max(b.right for b in boxes) + margin
    height = max(b.bottom for b in boxes) + margin
    return Layout(nodes=boxes, edges=routes, width=width, height=height, _by_id=by_id)


_STYLE_ELEMENT = re.compile(r"<style>.*?</style>", re.S)


def graph_svg(
    definition: dict,
    *,
    statuses: dict[str, str] | None = None,
    highlight: Iterable[str] | None = None,
    link_prefix: str | None = None,
    title: str = "Workflow graph",
    id_prefix: str = "wbg",
) -> SafeString:
    """The definition drawn as inline SVG (nested bodies and branches included).

    Layouts are cached by the definition's text. The SVG's own <style> element is dropped:
    the page's CSP allows styles from our stylesheet only, and app.css styles the graph.
    """
    if not isinstance(definition, dict):
        definition = {}
    layout = layout_for(
        json.dumps({"nodes": definition.get("nodes", []), "edges": definition.get("edges", [])}, sort_keys=True)
    )
    if not layout.nodes:
        return mark_safe("")
    svg = render_svg(
        layout, statuses=statuses, highlight=highlight, link_prefix=link_prefix, title=title, id_prefix=id_prefix
    )
    return mark_safe(_STYLE_ELEMENT.sub("", svg, count=1))  # noqa: S308 - render_svg escapes all text
