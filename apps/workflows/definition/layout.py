"""Layered drawing of workflow graphs, rendered server-side as SVG.

A simplified Sugiyama pipeline, in plain Python (no Django import):

1. break cycles: a depth-first search reverses back-edges (a loop body returning to its loop node),
   so they are drawn flowing upwards instead of breaking the layering;
2. layer by longest path from the start nodes;
3. split edges spanning several layers with invisible dummy vertices, so they route around nodes;
4. order each layer by the barycenter heuristic, sweeping down and up a few times and keeping the
   ordering with the fewest crossings;
5. place: every vertex moves towards the mean position of its neighbours, with overlaps resolved by
   averaging a left-to-right and a right-to-left packing (both feasible, so their mean is too).

Edges leave the bottom of their source and enter the top of their target; back-edges leave the top
of their source and enter the bottom of their target. The same input always gives the same output.

Labels, ids and types are user input: ``render_svg`` escapes every piece of text it writes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any
from urllib.parse import quote

__all__ = ["STATUSES", "EdgeRoute", "Layout", "NodeBox", "compute_layout", "render_svg"]

STATUSES = ("pending", "running", "completed", "failed", "cancelled", "waiting", "skipped", "blocked", "queued")
DIFF_KINDS = ("added", "removed", "changed")

Point = tuple[float, float]


#
# Result types
#


@dataclass(frozen=True)
class NodeBox:
    """A node's box: (x, y) is its top-left corner."""

    id: str
    type: str
    label: str
    x: float
    y: float
    width: float
    height: float
    layer: int
    order: int

    @property
    def center_x(self) -> float:
        return self.x + self.width / 2

    @property
    def center_y(self) -> float:
        return self.y + self.height / 2

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height


@dataclass(frozen=True)
class EdgeRoute:
    """An edge's polyline, from its source to its target (arrow at the last point).

    ``back`` marks an edge reversed for layering (it is drawn upwards); ``label_at`` is the point
    halfway along the polyline, where the label goes.
    """

    source: str
    target: str
    points: list[Point]
    label: str | None = None
    back: bool = False
    label_at: Point | None = None


@dataclass(frozen=True)
class Layout:
    nodes: list[NodeBox]
    edges: list[EdgeRoute]
    width: float
    height: float
    _by_id: dict[str, NodeBox] = field(default_factory=dict, repr=False, compare=False)

    def node(self, node_id: str) -> NodeBox:
        return self._by_id[node_id]


#
# Layout
#


def compute_layout(
    nodes: Iterable[Mapping[str, Any]],
    edges: Iterable[Mapping[str, Any]],
    *,
    node_width: float = 176.0,
    node_height: float = 52.0,
    h_gap: float = 32.0,
    v_gap: float = 56.0,
    margin: float = 24.0,
    sweeps: int = 4,
) -> Layout:
    """Lay out ``nodes`` (``{"id", "type", "label"?}``) and ``edges`` (``{"from", "to", "label"?}``).

    Edges naming an unknown node are left out (a draft may have them; the validator reports them).
    Raises ValueError for a node without an id or a duplicate id.
    """
    ids: list[str] = []
    infos: list[tuple[str, str]] = []
    index: dict[str, int] = {}
    for position, node in enumerate(nodes):
        if node.get("id") is None:
            raise ValueError(f"node #{position} has no id")
        node_id = str(node["id"])
        if node_id in index:
            raise ValueError(f"duplicate node id {node_id!r}")
        index[node_id] = len(ids)
        ids.append(node_id)
        label = node.get("label")
        infos.append((str(node.get("type") or ""), str(label) if label not in (None, "") else node_id))
    n = len(ids)

    real_edges: list[tuple[int, int, str | None]] = []
    for edge in edges:
        source, target = index.get(str(edge.get("from"))), index.get(str(edge.get("to")))
        if source is None or target is None:
            continue
        label = edge.get("label")
        real_edges.append((source, target, None if label in (None, "") else str(label)))

    back = _back_edges(n, real_edges)
    layer = _longest_path_layers(
        n, [(t, s) if b else (s, t) for (s, t, _), b in zip(real_edges, back, strict=True) if s != t]
    )

    # Layered graph: real vertices 0..n-1, then one dummy per layer crossed by a long edge.
    vlayer = list(layer)
    up: list[list[int]] = [[] for _ in range(n)]
    down: list[list[int]] = [[] for _ in range(n)]
    chains: list[list[int]] = []  # per real edge: its vertices from upper end to lower end
    for (s, t, _), is_back in zip(real_edges, back, strict=True):
        if s == t:
            chains.append([s])
            continue
        top, bottom = (t, s) if is_back else (s, t)
        chain = [top]
        for depth in range(layer[top] + 1, layer[bottom]):
            dummy = len(vlayer)
            vlayer.append(depth)
            up.append([])
            down.append([])
            chain.append(dummy)
        chain.append(bottom)
        for a, b in pairwise(chain):
            down[a].append(b)
            up[b].append(a)
        chains.append(chain)

    depth_count = max(vlayer, default=-1) + 1
    layers: list[list[int]] = [[] for _ in range(depth_count)]
    for v, d in enumerate(vlayer):
        layers[d].append(v)
    layers = _order_layers(layers, up, down, sweeps)

    is_real = [v < n for v in range(len(vlayer))]
    cx = _place(layers, up, down, is_real, node_width, h_gap)

    # Shift so the leftmost box starts at the margin.
    left = min((cx[v] - (node_width / 2 if is_real[v] else 0) for v in range(len(cx))), default=0.0)
    shift = margin - left
    cx = [x + shift for x in cx]

    def band_top(depth: int) -> float:
        return float(margin + depth * (node_height + v_gap))

    order_in_layer = [0] * len(vlayer)
    for layer_vertices in layers:
        for position, v in enumerate(layer_vertices):
            order_in_layer[v] = position
    boxes = [
        NodeBox(
            id=ids[v],
            type=infos[v][0],
            label=infos[v][1],
            x=cx[v] - node_width / 2,
            y=band_top(vlayer[v]),
            width=node_width,
            height=node_height,
            layer=vlayer[v],
            order=order_in_layer[v],
        )
        for v in range(n)
    ]

    # Ports: spread the edges leaving a node's bottom (entering its top) by where they head.
    down_ports = _ports(n, chains, cx, end=0)
    up_ports = _ports(n, chains, cx, end=-1)

    routes: list[EdgeRoute] = []
    for k, ((s, t, label), is_back, chain) in enumerate(zip(real_edges, back, chains, strict=True)):
        box = boxes[s]
        if s == t:
            loop_x = box.right + 18
            points: list[Point] = [
                (box.right, box.center_y - 10),
                (loop_x, box.center_y - 10),
                (loop_x, box.center_y + 10),
                (box.right, box.center_y + 10),
            ]
        else:
            top, bottom = chain[0], chain[-1]
            points = [(boxes[top].x + node_width * down_ports[top][k], boxes[top].bottom)]
            for dummy in chain[1:-1]:
                points.append((cx[dummy], band_top(vlayer[dummy])))
                points.append((cx[dummy], band_top(vlayer[dummy]) + node_height))
            points.append((boxes[bottom].x + node_width * up_ports[bottom][k], boxes[bottom].y))
            if is_back:
                points.reverse()
        points = [(round(x, 1), round(y, 1)) for x, y in points]
        routes.append(
            EdgeRoute(
                source=ids[s],
                target=ids[t],
                points=points,
                label=label,
                back=is_back,
                label_at=_halfway(points),
            )
        )

    xs = [b.right for b in boxes] + [x for r in routes for x, _ in r.points]
    width = (max(xs) + margin) if xs else 2 * margin
    height = (band_top(depth_count - 1) + node_height + margin) if depth_count else 2 * margin
    rounded = [
        NodeBox(b.id, b.type, b.label, round(b.x, 1), round(b.y, 1), b.width, b.height, b.layer, b.order) for b in boxes
    ]
    return Layout(
        nodes=rounded,
        edges=routes,
        width=round(width, 1),
        height=round(height, 1),
        _by_id={b.id: b for b in rounded},
    )


def _back_edges(n: int, edges: list[tuple[int, int, str | None]]) -> list[bool]:
    """Mark the edges a depth-first search meets going back up its path (self-loops included).

    The search starts from the nodes nothing points at, in input order, so a loop's entry edge
    stays forward and the body's return edge is the one reversed.
    """
    out: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    has_incoming = [False] * n
    for k, (s, t, _) in enumerate(edges):
        out[s].append((t, k))
        if s != t:
            has_incoming[t] = True
    back = [False] * len(edges)
    state = bytearray(n)  # 0 unseen, 1 on the path, 2 done
    roots = [v for v in range(n) if not has_incoming[v]] + list(range(n))
    for root in roots:
        if state[root]:
            continue
        state[root] = 1
        stack: list[tuple[int, int]] = [(root, 0)]
        while stack:
            v, i = stack[-1]
            if i < len(out[v]):
                stack[-1] = (v, i + 1)
                w, k = out[v][i]
                if state[w] == 1:
                    back[k] = True
                elif state[w] == 0:
                    state[w] = 1
                    stack.append((w, 0))
            else:
                state[v] = 2
                stack.pop()
    return back


def _longest_path_layers(n: int, dag_edges: list[tuple[int, int]]) -> list[int]:
    """Layer k holds the nodes whose longest path from a start node has k edges."""
    indegree = [0] * n
    out: list[list[int]] = [[] for _ in range(n)]
    for s, t in dag_edges:
        out[s].append(t)
        indegree[t] += 1
    layer = [0] * n
    queue = [v for v in range(n) if indegree[v] == 0]
    head = 0
    while head < len(queue):
        v = queue[head]
        head += 1
        for w in out[v]:
            layer[w] = max(layer[w], layer[v] + 1)
            indegree[w] -= 1
            if indegree[w] == 0:
                queue.append(w)
    return layer


def _order_layers(layers: list[list[int]], up: list[list[int]], down: list[list[int]], sweeps: int) -> list[list[int]]:
    """Barycenter sweeps (down, then up); returns the ordering with the fewest crossings seen."""
    size = sum(len(layer) for layer in layers)
    pos = [0] * size
    for layer in layers:
        for i, v in enumerate(layer):
            pos[v] = i
    best = [list(layer) for layer in layers]
    best_crossings = _crossings(layers, down, pos)

    def reorder(layer: list[int], neighbours: list[list[int]]) -> None:
        keys: dict[int, float] = {}
        for v in layer:
            near = neighbours[v]
            keys[v] = sum(pos[u] for u in near) / len(near) if near else float(pos[v])
        layer.sort(key=keys.__getitem__)  # stable: ties keep their current order
        for i, v in enumerate(layer):
            pos[v] = i

    for _ in range(sweeps):
        if best_crossings == 0:
            break
        for depth in range(1, len(layers)):
            reorder(layers[depth], up)
        for depth in range(len(layers) - 2, -1, -1):
            reorder(layers[depth], down)
        crossings = _crossings(layers, down, pos)
        if crossings < best_crossings:
            best_crossings = crossings
            best = [list(layer) for layer in layers]
    return best


def _crossings(layers: list[list[int]], down: list[list[int]], pos: list[int]) -> int:
    """Edge crossings between consecutive layers: inversions counted with a Fenwick tree."""
    total = 0
    for depth in range(len(layers) - 1):
        pairs = sorted((pos[v], pos[w]) for v in layers[depth] for w in down[v])
        width = len(layers[depth + 1])
        tree = [0] * (width + 1)
        for seen, (_, p) in enumerate(pairs):
            # count earlier edges ending strictly right of p
            i, not_right = p + 1, 0
            while i > 0:
                not_right += tree[i]
                i -= i & -i
            total += seen - not_right
            i = p + 1
            while i <= width:
                tree[i] += 1
                i += i & -i
    return total


def _place(
    layers: list[list[int]],
    up: list[list[int]],
    down: list[list[int]],
    is_real: list[bool],
    node_width: float,
    h_gap: float,
) -> list[float]:
    """Center x of every vertex: pull towards neighbours, keep each layer's order and spacing."""
    cx = [0.0] * len(is_real)

    def half(v: int) -> float:
        return node_width / 2 if is_real[v] else 0.0

    def sep(a: int, b: int) -> float:
        gap = h_gap if is_real[a] and is_real[b] else (h_gap / 2 if is_real[a] or is_real[b] else 12.0)
        return half(a) + gap + half(b)

    for layer in layers:
        x = 0.0
        for i, v in enumerate(layer):
            if i:
                x += sep(layer[i - 1], v)
            cx[v] = x

    def settle(layer: list[int], neighbours: list[list[int]]) -> None:
        if not layer:
            return
        want = [sum(cx[u] for u in neighbours[v]) / len(neighbours[v]) if neighbours[v] else cx[v] for v in layer]
        k = len(layer)
        gaps = [sep(layer[i - 1], layer[i]) for i in range(1, k)]
        rightward = list(want)
        for i in range(1, k):
            rightward[i] = max(want[i], rightward[i - 1] + gaps[i - 1])
        leftward = list(want)
        for i in range(k - 2, -1, -1):
            leftward[i] = min(want[i], leftward[i + 1] - gaps[i])
        for i, v in enumerate(layer):
            cx[v] = (rightward[i] + leftward[i]) / 2

    for _ in range(3):
        for depth in range(1, len(layers)):
            settle(layers[depth], up)
        for depth in range(len(layers) - 2, -1, -1):
            settle(layers[depth], down)
    for depth in range(1, len(layers)):
        settle(layers[depth], up)
    return cx


def _ports(n: int, chains: list[list[int]], cx: list[float], end: int) -> list[dict[int, float]]:
    """Per real vertex, each attached edge's port as a fraction of the node's width.

    ``end=0``: edges leaving the vertex downwards (it is the chain's upper end), ordered by the x of
    the next vertex; ``end=-1``: edges entering from above, ordered by the x of the previous one.
    """
    attached: list[list[tuple[float, int]]] = [[] for _ in range(n)]
    for k, chain in enumerate(chains):
        if len(chain) < 2:
            continue
        v, neighbour = (chain[0], chain[1]) if end == 0 else (chain[-1], chain[-2])
        attached[v].append((cx[neighbour], k))
    ports: list[dict[int, float]] = [{} for _ in range(n)]
    for v, items in enumerate(attached):
        items.sort()
        count = len(items)
        for i, (_, k) in enumerate(items):
            # Keep ports within the middle 70% so arrows never sit on the rounded corners.
            ports[v][k] = 0.5 if count == 1 else 0.15 + 0.7 * i / (count - 1)
    return ports


def _halfway(points: list[Point]) -> Point | None:
    if len(points) < 2:
        return None
    lengths = [abs(x2 - x1) + abs(y2 - y1) for (x1, y1), (x2, y2) in pairwise(points)]
    remaining = sum(lengths) / 2
    for ((x1, y1), (x2, y2)), length in zip(pairwise(points), lengths, strict=True):
        if remaining <= length and length:
            t = remaining / length
            return (round(x1 + (x2 - x1) * t, 1), round(y1 + (y2 - y1) * t, 1))
        remaining -= length
    return points[-1]


#
# SVG
#

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ID_SAFE = re.compile(r"[^A-Za-z0-9_-]")

# Zero-specificity defaults (:where) so the page's stylesheet always wins over them.
_STYLE = """
:where(.wb-graph) text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
:where(.wb-graph .node) rect{fill:#ffffff;stroke:#64748b;stroke-width:1.5}
:where(.wb-graph .node-label){font-size:13px;font-weight:600;fill:#0f172a}
:where(.wb-graph .node-type){font-size:11px;fill:#475569}
:where(.wb-graph .edge) path{fill:none;stroke:#94a3b8;stroke-width:1.5}
:where(.wb-graph .edge.back) path{stroke-dasharray:6 4}
:where(.wb-graph .edge-label){font-size:11px;fill:#334155;paint-order:stroke;stroke:#ffffff;stroke-width:3px}
:where(.wb-graph .arrow-head){fill:#94a3b8}
:where(.wb-graph .node.status-pending) rect{fill:#f8fafc;stroke:#94a3b8}
:where(.wb-graph .node.status-queued) rect{fill:#eef2ff;stroke:#6366f1}
:where(.wb-graph .node.status-running) rect{fill:#dbeafe;stroke:#2563eb;stroke-width:2.5}
:where(.wb-graph .node.status-waiting) rect{fill:#fef9c3;stroke:#ca8a04}
:where(.wb-graph .node.status-completed) rect{fill:#dcfce7;stroke:#16a34a}
:where(.wb-graph .node.status-failed) rect{fill:#fee2e2;stroke:#dc2626;stroke-width:2.5}
:where(.wb-graph .node.status-cancelled) rect{fill:#e5e7eb;stroke:#6b7280}
:where(.wb-graph .node.status-skipped) rect{fill:#f8fafc;stroke:#cbd5e1;stroke-dasharray:4 3}
:where(.wb-graph .node.status-blocked) rect{fill:#ffedd5;stroke:#ea580c}
:where(.wb-graph .node.highlight) rect{stroke:#7c3aed;stroke-width:3}
:where(.wb-graph .edge.highlight) path{stroke:#7c3aed;stroke-width:2.5}
:where(.wb-graph .node.diff-added) rect{stroke:#16a34a;stroke-width:3}
:where(.wb-graph .node.diff-changed) rect{stroke:#d97706;stroke-width:3}
:where(.wb-graph .node.diff-removed){opacity:.55}
:where(.wb-graph .node.diff-removed) rect{stroke:#dc2626;stroke-dasharray:5 3}
""".strip()


def _esc(value: object) -> str:
    """Text safe in XML content and in double- or single-quoted attributes."""
    return html.escape(_INVALID_XML.sub("\ufffd", str(value)), quote=True)


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def _truncate(text: str, width: float, char_width: float) -> str:
    limit = max(int(width // char_width), 4)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def render_svg(
    layout: Layout,
    statuses: Mapping[str, str] | None = None,
    highlight: Iterable[str] | None = None,
    diff: Mapping[str, str] | None = None,
    link_prefix: str | None = None,
    *,
    title: str = "Workflow graph",
    id_prefix: str = "wbg",
) -> str:
    """A standalone, accessible SVG document of ``layout``.

    Each node is ``<g class="node status-<status>" data-node-id="…">`` holding a rounded rect, its
    label and its type. ``statuses`` maps node ids to one of STATUSES (nodes missing from it are
    pending; anything unknown becomes ``status-unknown``); without ``statuses`` nodes get no status
    class. ``highlight`` adds class ``highlight`` to those nodes and to edges between two of them;
    ``diff`` adds ``diff-added|removed|changed``; ``link_prefix`` makes each node a link to
    ``link_prefix + <url-quoted node id>``. ``id_prefix`` keeps element ids unique when a page holds
    several graphs. Every piece of text is XML-escaped.
    """
    prefix = _ID_SAFE.sub("-", id_prefix) or "wbg"
    highlighted = set(highlight or ())
    w, h = _num(layout.width), _num(layout.height)
    status_of = dict(statuses) if statuses is not None else None
    summary = f"{len(layout.nodes)} step{'s' if len(layout.nodes) != 1 else ''}, " + (
        f"{len(layout.edges)} connection{'s' if len(layout.edges) != 1 else ''}."
    )
    described: list[str] = []
    out: list[str] = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="wb-graph" role="img" '
            f'aria-labelledby="{prefix}-title {prefix}-desc" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
        ),
        f'<title id="{prefix}-title">{_esc(title)}</title>',
        "",  # the description, filled in once the nodes are known
        f"<style>{_STYLE}</style>",
        (
            f'<defs><marker id="{prefix}-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
            'markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse">'
            '<path class="arrow-head" d="M0,0L10,5L0,10z"/></marker></defs>'
        ),
        '<g class="edges">',
    ]
    for edge in layout.edges:
        classes = ["edge"]
        if edge.back:
            classes.append("back")
        if edge.source in highlighted and edge.target in highlighted:
            classes.append("highlight")
        d = "M" + " L".join(f"{_num(x)},{_num(y)}" for x, y in edge.points)
        out.append(
            f'<g class="{" ".join(classes)}" data-from="{_esc(edge.source)}" data-to="{_esc(edge.target)}">'
            f'<path d="{d}" marker-end="url(#{prefix}-arrow)"/>'
        )
        if edge.label and edge.label_at:
            lx, ly = edge.label_at
            out.append(
                f'<text class="edge-label" x="{_num(lx + 6)}" y="{_num(ly)}" dominant-baseline="middle">'
                f"{_esc(_truncate(edge.label, 140, 6.5))}</text>"
            )
        out.append("</g>")
    out.append("</g>")
    out.append('<g class="nodes">')
    for box in layout.nodes:
        classes = ["node"]
        status: str | None = None
        if status_of is not None:
            status = status_of.get(box.id, "pending")
            status = status if status in STATUSES else "unknown"
            classes.append(f"status-{status}")
        if box.id in highlighted:
            classes.append("highlight")
        change = diff.get(box.id) if diff else None
        if change in DIFF_KINDS:
            classes.append(f"diff-{change}")
        else:
            change = None
        spoken = box.label + (f" ({box.type})" if box.type else "")
        if status:
            spoken += f": {status}"
        if change:
            spoken += f", {change}"
        described.append(spoken)
        inner = (
            f"<title>{_esc(spoken)}</title>"
            f'<rect x="{_num(box.x)}" y="{_num(box.y)}" width="{_num(box.width)}" height="{_num(box.height)}" '
            f'rx="8" ry="8"/>'
            f'<text class="node-label" x="{_num(box.center_x)}" y="{_num(box.center_y - 4)}" text-anchor="middle">'
            f"{_esc(_truncate(box.label, box.width - 20, 7.5))}</text>"
            f'<text class="node-type" x="{_num(box.center_x)}" y="{_num(box.center_y + 13)}" text-anchor="middle">'
            f"{_esc(_truncate(box.type, box.width - 20, 6.5))}</text>"
        )
        if link_prefix is not None:
            inner = f'<a href="{_esc(link_prefix + quote(box.id, safe=""))}">{inner}</a>'
        out.append(
            f'<g class="{" ".join(classes)}" data-node-id="{_esc(box.id)}" data-node-type="{_esc(box.type)}">'
            f"{inner}</g>"
        )
    out.append("</g>")
    out.append("</svg>")
    description = summary + (" Steps: " + "; ".join(described) + "." if described else "")
    out[2] = f'<desc id="{prefix}-desc">{_esc(description)}</desc>'
    return "\n".join(out) + "\n"
