"""The dependency graph of a dynamic node's items, drawn as SVG: items in layers (an item sits one
layer below its deepest dependency), each layer ordered by where its dependencies sit and wrapped
into rows when it is wide, so 500 items stay readable. Plain Python, no Django import.

Each item is ``<g class="item status-<s> [critical]" data-item="…">``; static/js/depgraph.js
recolours items in place from the live updates and opens an item's step or child run on a click.
Every piece of text is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any
from urllib.parse import quote

ITEM_W = 132
ITEM_H = 30
H_GAP = 14
ROW_GAP = 12
LAYER_GAP = 44
MARGIN = 20
MAX_PER_ROW = 24


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def layers(items: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """item id -> layer (0 for items without dependencies); unknown dependencies are ignored and a
    cycle (which the engine refuses anyway) does not loop forever."""
    deps = {str(i["id"]): [str(d) for d in i.get("depends_on") or []] for i in items}
    layer: dict[str, int] = {}
    for start in deps:
        if start in layer:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        on_path: set[str] = set()
        while stack:
            node, state = stack.pop()
            if state == 0:
                if node in layer:
                    continue
                on_path.add(node)
                stack.append((node, 1))
                for dep in deps.get(node, []):
                    if dep in deps and dep not in layer and dep not in on_path:
                        stack.append((dep, 0))
            else:
                on_path.discard(node)
                layer[node] = 1 + max((layer.get(d, -1) for d in deps.get(node, []) if d in deps), default=-1)
    return layer


def layout(items: Sequence[Mapping[str, Any]]) -> tuple[dict[str, tuple[float, float]], float, float]:
    """(item id -> top-left corner, width, height)."""
    layer_of = layers(items)
    by_layer: dict[int, list[str]] = {}
    order = {str(i["id"]): n for n, i in enumerate(items)}
    for item in items:
        by_layer.setdefault(layer_of[str(item["id"])], []).append(str(item["id"]))
    deps = {str(i["id"]): [str(d) for d in i.get("depends_on") or []] for i in items}
    slot: dict[str, float] = {}
    pos: dict[str, tuple[float, float]] = {}
    y = float(MARGIN)
    width = 0.0
    for depth in sorted(by_layer):
        members = by_layer[depth]
        if depth:
            # Barycenter: under the mean slot of its dependencies, then the items' own order.
            members.sort(key=lambda i: (sum(slot.get(d, 0.0) for d in deps[i]) / max(len(deps[i]), 1), order[i]))
        for n, item_id in enumerate(members):
            row, column = divmod(n, MAX_PER_ROW)
            slot[item_id] = float(column)
            x = MARGIN + column * (ITEM_W + H_GAP)
            pos[item_id] = (x, y + row * (ITEM_H + ROW_GAP))
            width = max(width, x + ITEM_W + MARGIN)
        rows = (len(members) + MAX_PER_ROW - 1) // MAX_PER_ROW
        y += rows * (ITEM_H + ROW_GAP) - ROW_GAP + LAYER_GAP
    height = y - LAYER_GAP + MARGIN if by_layer else 2.0 * MARGIN
    return pos, max(width, 2.0 * MARGIN), height


def render_svg(graph: Mapping[str, Any], *, title: str, link_for_item: str = "") -> str:
    """An SVG of `graph` (presenters.dynamic_graph's data). `link_for_item` is a URL pattern with
    ``{}`` for the (URL-quoted) item id, kept on each item for the click."""
    items = graph.get("items") or []
    critical = set(graph.get("critical_path", {}).get("items") or [])
    critical_path = list(graph.get("critical_path", {}).get("items") or [])
    critical_edges = set(pairwise(critical_path))
    pos, width, height = layout(items)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wb-graph dep-graph" role="img" aria-label="{_esc(title)}" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'data-node="{_esc(graph.get("node", ""))}">',
        '<g class="deps">',
    ]
    for item in items:
        target = str(item["id"])
        tx, ty = pos[target]
        for dep in item.get("depends_on") or []:
            dep = str(dep)
            if dep not in pos:
                continue
            sx, sy = pos[dep]
            x1, y1, x2, y2 = sx + ITEM_W / 2, sy + ITEM_H, tx + ITEM_W / 2, ty
            bend = max(14.0, (y2 - y1) / 2)
            cls = "dep critical" if (dep, target) in critical_edges else "dep"
            out.append(
                f'<path class="{cls}" data-from="{_esc(dep)}" data-to="{_esc(target)}" '
                f'd="M{x1:.0f},{y1:.0f} C{x1:.0f},{y1 + bend:.0f} {x2:.0f},{y2 - bend:.0f} {x2:.0f},{y2:.0f}"/>'
            )
    out.append('</g><g class="items">')
    for item in items:
        item_id = str(item["id"])
        x, y = pos[item_id]
        status = str(item.get("status") or "queued")
        classes = f"item status-{_esc(status)}" + (" critical" if item_id in critical else "")
        attrs = f' data-item="{_esc(item_id)}"'
        if link_for_item:
            attrs += f' data-url="{_esc(link_for_item.format(quote(item_id, safe="")))}"'
        label = item_id if len(item_id) <= 18 else item_id[:17] + "\u2026"
        spoken = f"{item_id}: {status}" + (", on the critical path" if item_id in critical else "")
        if item.get("depends_on"):
            spoken += (
                ", needs "
                + ", ".join(str(d) for d in item["depends_on"][:8])
                + ("…" if len(item["depends_on"]) > 8 else "")
            )
        out.append(
            f'<g class="{classes}"{attrs} tabindex="0" role="button" aria-label="{_esc(spoken)}">'
            f"<title>{_esc(spoken)}</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{ITEM_W}" height="{ITEM_H}" rx="6"/>'
            f'<text x="{x + ITEM_W / 2:.0f}" y="{y + ITEM_H / 2 + 4:.0f}" text-anchor="middle">{_esc(label)}</text></g>'
        )
    out.append("</g></svg>")
    return "".join(out)
