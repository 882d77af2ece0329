"""SVG drawings of definitions for the collaboration pages (template previews, version diffs).

Nested bodies (loop bodies, parallel branches) are flattened into the drawing, each nested
node linked from its container, so a diff can colour nodes at any depth.
"""

from __future__ import annotations

from apps.workflows.definition.graph import graph_edges
from apps.workflows.definition.layout import compute_layout, render_svg


def _flatten(definition: dict | None) -> tuple[list[dict], list[dict]]:
    """Nodes and links as the workflow and execution pages draw them (activity names, "branch N"
    labels, on_error, approval routes and timeouts), so a diff looks like the graph people know."""
    nodes: list[dict] = []
    edges: list[dict] = []
    if isinstance(definition, dict):
        graph_edges(definition.get("nodes"), definition.get("edges"), nodes, edges)
    return nodes, edges


def definition_svg(
    definition: dict | None,
    *,
    diff: dict[str, str] | None = None,
    title: str = "Workflow graph",
    removed_from: dict | None = None,
) -> str:
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
