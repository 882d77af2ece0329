"""The canvas: a definition drawn with each node where its `ui` places it (or where the automatic
layout puts it), loop bodies and parallel branches as containers around their nodes, and every
connection (edges, condition cases and defaults, error, timeout and approval routes) as a curve
from the source's port to the target.

`canvas_model` is plain data; `render_svg` draws it (every text escaped) and `static/js/canvas.js`
makes it editable (drag, connect, delete, undo) through the editing service.
The same drawing, read-only, serves template previews and versions.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from apps.workflows.definition.graph import layout_for

from .definition.validator import Problem, validate
from .editing import _list, iter_graphs

NODE_W = 176.0
NODE_H = 52.0
PAD = 18.0
MARGIN = 40.0
MIN_VIEW_W = 960.0
MIN_VIEW_H = 480.0


@dataclass
class CanvasNode:
    id: str
    type: str
    detail: str
    label: str
    graph: str
    x: float
    y: float
    w: float = NODE_W
    h: float = NODE_H
    problems: list[str] = field(default_factory=list)
    diff: str = ""

    @property
    def problem_text(self) -> str:
        return "; ".join(self.problems)


@dataclass
class CanvasEdge:
    source: str
    target: str
    kind: str  # edge, case, default, on_error, timeout_to, route
    label: str
    graph: str
    path: str = ""
    label_x: float = 0.0
    label_y: float = 0.0
    diff: str = ""

    @property
    def editable_label(self) -> bool:
        return self.kind in ("edge", "case")


@dataclass
class CanvasContainer:
    key: str  # the graph key nodes dropped here go into
    owner: str
    label: str
    x: float
    y: float
    w: float
    h: float
    empty: bool


@dataclass
class CanvasModel:
    nodes: list[CanvasNode]
    edges: list[CanvasEdge]
    containers: list[CanvasContainer]
    x: float
    y: float
    width: float
    height: float

    @property
    def view_box(self) -> str:
        return f"{self.x:.0f} {self.y:.0f} {self.width:.0f} {self.height:.0f}"


def curve(sx: float, sy: float, tx: float, ty: float) -> tuple[str, float, float]:
    """A cubic curve from a source port (bottom middle) to a target (top middle), and its midpoint.
    static/js/canvas.js draws the same curve while a node is dragged."""
    d = max(40.0, abs(ty - sy) / 2)
    path = f"M{sx:.1f},{sy:.1f} C{sx:.1f},{sy + d:.1f} {tx:.1f},{ty - d:.1f} {tx:.1f},{ty:.1f}"
    return path, (sx + tx) / 2, (sy + ty) / 2


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _without_ui(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ui(v) for k, v in value.items() if k != "ui"}
    if isinstance(value, list):
        return [_without_ui(v) for v in value]
    return value


def _auto_positions(definition: dict) -> dict[str, tuple[float, float]]:
    """Where the read-only graph's layered layout puts each node (for nodes without a `ui`).
    Positions are left out of the cache key: moving a node does not lay the graph out again."""
    placed = all(
        isinstance(n.get("ui"), dict)
        and _number(n["ui"].get("x")) is not None
        and _number(n["ui"].get("y")) is not None
        for _k, _l, g in iter_graphs(definition)
        for n in _list(g.get("nodes"))
        if isinstance(n, dict)
    )
    if placed:
        return {}
    text = json.dumps(
        _without_ui({"nodes": definition.get("nodes", []), "edges": definition.get("edges", [])}), sort_keys=True
    )
    try:
        layout = layout_for(text)
    except ValueError:
        return {}
    return {box.id: (box.x, box.y) for box in layout.nodes}


def _connections(node: dict) -> list[tuple[str, str, str]]:
    """(kind, target, label) of a node's own routes (its edges live in the graph)."""
    out: list[tuple[str, str, str]] = []
    if node.get("type") == "condition":
        for i, case in enumerate(_list(node.get("cases"))):
            if isinstance(case, dict) and isinstance(case.get("to"), str) and case["to"]:
                out.append(("case", case["to"], str(case.get("label") or f"case {i + 1}")))
        if isinstance(node.get("default"), str) and node["default"]:
            out.append(("default", node["default"], "default"))
    if isinstance(node.get("on_error"), str) and node["on_error"]:
        out.append(("on_error", node["on_error"], "on error"))
    if isinstance(node.get("timeout_to"), str) and node["timeout_to"]:
        out.append(("timeout_to", node["timeout_to"], "timeout"))
    if isinstance(node.get("routes"), dict):
        for decision, target in node["routes"].items():
            if isinstance(target, str) and target:
                out.append(("route", target, str(decision)))
    return out


def canvas_model(
    definition: Any, *, problems: list[Problem] | None = None, diff: dict[str, str] | None = None
) -> CanvasModel:
    """The canvas of `definition`. `problems` (default: the validator's) are attached to the nodes
    they name; `diff` maps node ids to added/removed/changed for a version comparison."""
    if not isinstance(definition, dict):
        definition = {}
    if problems is None:
        problems = validate(definition)
    by_node: dict[str, list[str]] = {}
    for problem in problems:
        if problem.node:
            by_node.setdefault(problem.node, []).append(
                (f"{problem.field}: " if problem.field else "") + problem.message
            )
    auto = _auto_positions(definition)
    nodes: list[CanvasNode] = []
    index: dict[str, CanvasNode] = {}
    raw_edges: list[tuple[str, str, str, str, str]] = []
    children: dict[str, list[str]] = {}  # graph key -> ids of nodes in it at any depth
    owners: dict[str, str] = {}  # graph key -> owner node id
    parent_key: dict[str, str] = {}  # node id -> the key of the graph holding it
    for key, _label, graph in iter_graphs(definition):
        for node in _list(graph.get("nodes")):
            if not isinstance(node, dict) or not node.get("id") or str(node["id"]) in index:
                continue
            node_id = str(node["id"])
            ui = given if isinstance(given := node.get("ui"), dict) else {}
            x, y = _number(ui.get("x")), _number(ui.get("y"))
            if x is None or y is None:
                x, y = auto.get(node_id, (MARGIN, MARGIN + len(nodes) * (NODE_H + 30)))
            node_type = str(node.get("type") or "")
            detail = str(node.get("activity") or "") if node_type == "activity" else ""
            item = CanvasNode(
                id=node_id,
                type=node_type,
                detail=detail,
                label=str(node.get("name") or node_id),
                graph=key,
                x=x,
                y=y,
                problems=by_node.get(node_id, []),
                diff=(diff or {}).get(node_id, ""),
            )
            nodes.append(item)
            index[node_id] = item
            parent_key[node_id] = key
            for kind, target, label in _connections(node):
                raw_edges.append((node_id, target, kind, label, key))
        for edge in _list(graph.get("edges")):
            if isinstance(edge, dict) and isinstance(edge.get("from"), str) and isinstance(edge.get("to"), str):
                edge_label = edge.get("label")
                raw_edges.append((edge["from"], edge["to"], "edge", "" if edge_label is None else str(edge_label), key))
        if key:
            owners[key] = key.split(".", 1)[0]
            children.setdefault(key, [])
    # Nodes of nested graphs count for every enclosing container.
    for node_id, key in parent_key.items():
        seen = set()
        while key and key not in seen:
            seen.add(key)
            children.setdefault(key, []).append(node_id)
            key = parent_key.get(owners.get(key, ""), "")

    containers: list[CanvasContainer] = []
    for key, members in children.items():
        owner = index.get(owners.get(key, ""))
        if owner is None:
            continue
        what = "Body" if key.endswith(".body") else "Branch " + str(int(key.rsplit("[", 1)[1].rstrip("]")) + 1)
        if members:
            boxes = [index[m] for m in members]
            x0 = min(b.x for b in boxes) - PAD
            y0 = min(b.y for b in boxes) - PAD - 14
            x1 = max(b.x + b.w for b in boxes) + PAD
            y1 = max(b.y + b.h for b in boxes) + PAD
            containers.append(CanvasContainer(key, owner.id, f"{what} of {owner.id}", x0, y0, x1 - x0, y1 - y0, False))
        else:
            containers.append(
                CanvasContainer(
                    key,
                    owner.id,
                    f"{what} of {owner.id}: drop nodes here",
                    owner.x,
                    owner.y + owner.h + 24,
                    owner.w,
                    64,
                    True,
                )
            )
    # A parallel node takes a new branch from a drop on itself; one without branches shows a zone.
    for item in nodes:
        if item.type == "parallel" and not any(c.owner == item.id for c in containers):
            containers.append(
                CanvasContainer(
                    f"{item.id}.branches[new]",
                    item.id,
                    f"New branch of {item.id}: drop nodes here",
                    item.x,
                    item.y + item.h + 24,
                    item.w,
                    64,
                    True,
                )
            )
    # Outer containers first, so inner ones are drawn (and hit) on top.
    containers.sort(key=lambda c: -(c.w * c.h))

    edges: list[CanvasEdge] = []
    for source, target, kind, label, key in raw_edges:
        a, b = index.get(source), index.get(target)
        if a is None or b is None:
            continue  # a draft's dangling reference: the validator names it
        path, lx, ly = curve(a.x + a.w / 2, a.y + a.h, b.x + b.w / 2, b.y)
        edges.append(CanvasEdge(source, target, kind, label, key, path, lx, ly))

    return _framed(nodes, edges, containers)


def _framed(nodes: list[CanvasNode], edges: list[CanvasEdge], containers: list[CanvasContainer]) -> CanvasModel:
    """The model with a view box around everything (never zoomed in past life size)."""
    boxes_x = [n.x for n in nodes] + [c.x for c in containers]
    boxes_y = [n.y for n in nodes] + [c.y for c in containers]
    right = [n.x + n.w for n in nodes] + [c.x + c.w for c in containers]
    bottom = [n.y + n.h for n in nodes] + [c.y + c.h for c in containers]
    if nodes:
        x0, y0 = min(boxes_x) - MARGIN, min(boxes_y) - MARGIN
        width, height = max(right) + MARGIN - x0, max(bottom) + MARGIN - y0
    else:
        x0, y0, width, height = 0.0, 0.0, MIN_VIEW_W, MIN_VIEW_H
    if width < MIN_VIEW_W:
        x0 -= (MIN_VIEW_W - width) / 2
        width = MIN_VIEW_W
    height = max(height, MIN_VIEW_H)
    return CanvasModel(nodes, edges, containers, x0, y0, width, height)


def diff_canvas(before: Any, after: Any, diff: dict[str, Any]) -> CanvasModel:
    """`after` drawn with `diff` (apps/versions/services.diff_definitions) in colour: added, changed
    and removed nodes (removed ones where `before` had them) and edges (removed ones dashed red)."""
    node_changes = {n["id"]: n["change"] for n in diff.get("nodes", [])}
    edge_changes = {(e["from"], e["to"]): e["change"] for e in diff.get("edges", [])}
    model = canvas_model(after, problems=[], diff=node_changes)
    old = canvas_model(before, problems=[])
    index = {n.id: n for n in model.nodes}
    for node in old.nodes:
        if node.id not in index:
            node.diff = "removed"
            node.problems = []
            model.nodes.append(node)
            index[node.id] = node
    for edge in model.edges:
        if edge.kind == "edge":
            edge.diff = edge_changes.get((edge.source, edge.target), "")
    for edge in old.edges:
        removed = edge.kind == "edge" and edge_changes.get((edge.source, edge.target)) == "removed"
        gone = edge.source not in {n.id for n in model.nodes if n.diff != "removed"} or edge.target not in {
            n.id for n in model.nodes if n.diff != "removed"
        }
        if (removed or gone) and edge.source in index and edge.target in index:
            a, b = index[edge.source], index[edge.target]
            edge.path, edge.label_x, edge.label_y = curve(a.x + a.w / 2, a.y + a.h, b.x + b.w / 2, b.y)
            edge.diff = "removed"
            model.edges.append(edge)
    return _framed(model.nodes, model.edges, model.containers)


def render_readonly(model: CanvasModel, *, title: str, canvas_id: str = "cv") -> str:
    """The drawing without the editor's handles (template previews, versions, version diffs)."""
    return render_svg(model, canvas_id=canvas_id, title=title, editable=False)


#
# SVG (string-built: a 200-node canvas is redrawn after every change, a template took 15x longer)
#


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _cut(text: str, limit: int) -> str:
    """Django's truncatechars: at most `limit` characters, an ellipsis included."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _f(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def render_svg(model: CanvasModel, *, canvas_id: str, title: str, editable: bool, revision: str = "") -> str:
    """The canvas as SVG; every piece of text is escaped. Editable canvases get focusable nodes and
    connections and a port on each node (static/js/canvas.js)."""
    n_nodes, n_edges = len(model.nodes), len(model.edges)
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" class="wb-graph wb-canvas '
        f'{"editable" if editable else "readonly"}" role="img" '
        f'aria-labelledby="{_e(canvas_id)}-title" viewBox="{model.view_box}" data-revision="{_e(revision)}" '
        f'data-fit="{model.view_box}" '
        'preserveAspectRatio="xMidYMin meet">',
        f'<title id="{_e(canvas_id)}-title">{_e(title)}: {n_nodes} node{"" if n_nodes == 1 else "s"}, {n_edges} '
        f"connection{'' if n_edges == 1 else 's'}</title>",
        f'<defs><marker id="{_e(canvas_id)}-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerUnits="userSpaceOnUse" markerWidth="10" '
        'markerHeight="10" orient="auto-start-reverse"><path class="arrow-head" d="M0,0L10,5L0,10z"/></marker></defs>',
        '<g class="viewport"><g class="containers">',
    ]
    for c in model.containers:
        out.append(
            f'<g class="container{" empty" if c.empty else ""}" data-graph="{_e(c.key)}" data-owner="{_e(c.owner)}">'
            f'<rect x="{_f(c.x)}" y="{_f(c.y)}" width="{_f(c.w)}" height="{_f(c.h)}" rx="12"/>'
            f'<text class="container-label" x="{_f(c.x + 10)}" y="{_f(c.y + 15)}">{_e(c.label)}</text></g>'
        )
    out.append('</g><g class="edges">')
    for e in model.edges:
        focus = ""
        if editable:
            spoken = f"Connection {e.source} to {e.target}" + (f" ({e.label})" if e.label else "")
            focus = f' tabindex="0" role="button" aria-label="{_e(spoken)}"'
        label = (
            f'<text class="edge-label" x="{_f(e.label_x)}" y="{_f(e.label_y)}" text-anchor="middle" '
            f'dominant-baseline="middle">{_e(_cut(e.label, 28))}</text>'
            if e.label
            else ""
        )
        out.append(
            f'<g class="edge kind-{_e(e.kind)}{" diff-" + _e(e.diff) if e.diff else ""}" '
            f'data-from="{_e(e.source)}" data-to="{_e(e.target)}" '
            f'data-kind="{_e(e.kind)}" data-label="{_e(e.label)}"{focus}>'
            f'<path class="hit" d="{e.path}"/><path d="{e.path}" marker-end="url(#{_e(canvas_id)}-arrow)"/>{label}</g>'
        )
    out.append('</g><g class="nodes">')
    for n in model.nodes:
        classes = (
            f"node type-{_e(n.type)}"
            + (" has-problem" if n.problems else "")
            + (f" diff-{_e(n.diff)}" if n.diff else "")
        )
        focus = ""
        if editable:
            spoken = f"Node {n.id} ({n.type})" + (
                f": {len(n.problems)} problem{'' if len(n.problems) == 1 else 's'}" if n.problems else ""
            )
            focus = f' tabindex="0" role="button" aria-label="{_e(spoken)}"'
        tip = (
            f"{n.label} ({n.type}{': ' + n.detail if n.detail else ''})"
            + (f", {n.diff}" if n.diff else "")
            + "".join("\n" + p for p in n.problems)
        )
        kind = n.type + (f": {_cut(n.detail, 16)}" if n.detail else "")
        cx = _f(n.w / 2, 0)
        parts = [
            f'<g class="{classes}" data-node-id="{_e(n.id)}" data-node-type="{_e(n.type)}" data-graph="{_e(n.graph)}" '
            f'transform="translate({_f(n.x)},{_f(n.y)})" data-x="{_f(n.x)}" data-y="{_f(n.y)}"{focus}>',
            f"<title>{_e(tip)}</title>",
            f'<rect width="{_f(n.w, 0)}" height="{_f(n.h, 0)}" rx="8" ry="8"/>',
            f'<text class="node-label" x="{cx}" y="{_f(n.h - 30, 0)}" '
            f'text-anchor="middle">{_e(_cut(n.label, 22))}</text>',
            f'<text class="node-type" x="{cx}" y="{_f(n.h - 13, 0)}" text-anchor="middle">{_e(kind)}</text>',
        ]
        if n.problems:
            parts.append(
                f'<g class="problem-badge"><circle cx="{_f(n.w - 2, 0)}" cy="2" r="9"/><text '
                f'x="{_f(n.w - 2, 0)}" y="6" text-anchor="middle">!</text></g>'
            )
        if editable:
            parts.append(
                f'<circle class="port" cx="{cx}" cy="{_f(n.h, 0)}" r="7"><title>Drag to another node to connect '
                f"{_e(n.id)}</title></circle>"
            )
        parts.append("</g>")
        out.append("".join(parts))
    out.append("</g></g></svg>")
    return "".join(out)
