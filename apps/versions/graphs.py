"""SVG drawings of definitions for the collaboration pages (template previews, version diffs).

Nested bodies (loop bodies, parallel branches) are flattened into the drawing, each nested
node linked from its container, so a diff can colour nodes at any depth.
"""

from __future__ import annotations

from typing import Any

from apps.workflows.layout import compute_layout, render_svg


def _flatten(definition: dict | None) -> tuple[list[dict], list[dict]]:
    nodes: list[dict] = []
    edges: list[dict] = []
    seen: set[str] = set()

    def visit(graph: Any, parent: str | None) -> None:
        if not isinstance(graph, dict):
            return
        first = True
        for node in graph.get("nodes") or []:
            if not isinstance(node, dict) or not isinstance(node.get("id"), str) or node["id"] in seen:
                continue
            seen.add(node["id"])
            nodes.append({"id": node["id"], "type": str(node.get("type", "")), "label": node.get("name") or node["id"]})
            if parent and first:
                edges.append({"from": parent, "to": node["id"], "label": "body"})
            first = False
            visit(node.get("body"), node["id"])
            for branch in node.get("branches") or []:
                visit(branch, node["id"])
        for edge in graph.get("edges") or []:
            if isinstance(edge, dict) and isinstance(edge.get("from"), str) and isinstance(edge.get("to"), str):
                edges.append({"from": edge["from"], "to": edge["to"], "label": edge.get("label")})
        for node in graph.get("nodes") or []:
            if isinstance(node, dict) and node.get("type") == "condition":
                for case in node.get("cases") or []:
                    if isinstance(case, dict) and isinstance(case.get("to"), str):
                        edges.append({"from": node["id"], "to": case["to"], "label": case.get("label")})
                if isinstance(node.get("default"), str):
                    edges.append({"from": node["id"], "to": node["default"], "label": "default"})

    visit(definition, None)
    return nodes, edges


def definition_svg(definition: dict | None, *, diff: dict[str, str] | None = None, title: str = "Workflow graph", removed_from: dict | None = None) -> str:
    """The definition drawn as SVG; with `removed_from` (the older definition) removed nodes are drawn too."""
    nodes, edges = _flatten(definition)
    if removed_from is not None:
        old_nodes, old_edges = _flatten(removed_from)
        ids = {n["id"] for n in nodes}
        nodes += [n for n in old_nodes if n["id"] not in ids]
        edges += [e for e in old_edges if e["from"] not in ids or e["to"] not in ids]
    if not nodes:
        nodes = [{"id": "empty", "type": "", "label": "(no nodes)"}]
    try:
        layout = compute_layout(nodes, edges)
    except ValueError:
        layout = compute_layout(nodes[:1], [])
    return render_svg(layout, diff=diff or None, title=title)
