"""Definition editing: the one place that changes a workflow's nodes and edges.

The canvas, the editor's forms and the API all call `edit_definition` (or `apply_operations`, which
parses the canvas/API operation format). Each call locks the workflow row (SELECT … FOR UPDATE),
checks the caller's `expected_revision` against the stored one, applies the change to a copy of the
definition and saves it as one reversion version. A caller that read an older revision gets
`EditConflict` (HTTP 409 in the API, a message in the UI) instead of overwriting someone's work.

The operations below are plain functions over a definition dict (no database); they raise
`EditError` naming the problem, and leave validation of the result (draft problems) to the validator.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

from django.db import transaction

from . import services
from .definition.schema import ID_PATTERN, NODE_TYPES
from .models import Workflow

ID_RE = re.compile(ID_PATTERN)
GRAPH_KEY_RE = re.compile(r"(.+)\.(body|branches\[(\d+|new)\])")


class EditError(ValueError):
    """The change cannot be applied; `field` names the operation's argument at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class EditConflict(Exception):
    """The workflow changed since the caller read it (its revision is not the expected one)."""

    def __init__(self, current_revision: str):
        self.current_revision = current_revision
        super().__init__(
            "Someone else saved this workflow after you opened it, so your change was not saved. "
            "Reload to see the current version, then make your change again."
        )


def revision_of(workflow: Workflow) -> str:
    """An opaque token that changes whenever the workflow row is saved (its update time in µs)."""
    return str(int(workflow.updated_at.timestamp() * 1_000_000)) if workflow.updated_at else "0"


#
# The service
#


@transaction.atomic
def edit_definition(
    workflow: Workflow,
    change: Callable[[dict], str],
    *,
    acting_user: Any,
    expected_revision: str | None = None,
    fields: dict[str, Any] | None = None,
) -> Workflow:
    """Lock the workflow row, check `expected_revision`, apply `change` to a copy of the definition
    and save it as a new version. `change` mutates the copy and returns the version's comment; it
    may raise EditError, which rolls everything back. `fields` (name, description, tags …) are saved
    in the same version. Returns the locked, saved workflow (a fresh
    instance: the caller's may be stale). Raises EditConflict when the revision does not match.

    The caller has checked the change permission (`access_workflow(user, pk, "change")`).
    """
    locked = Workflow.objects.select_for_update(of=("self",)).get(pk=workflow.pk)
    current = revision_of(locked)
    if expected_revision not in (None, "") and str(expected_revision) != current:
        raise EditConflict(current)
    definition = (
        copy.deepcopy(locked.definition)
        if isinstance(locked.definition, dict)
        else {"format_version": 1, "nodes": [], "edges": []}
    )
    comment = change(definition)
    try:
        return services.update_workflow(
            locked, acting_user=acting_user, comment=comment, definition=definition, **(fields or {})
        )
    except services.DefinitionNotPermitted as exc:  # e.g. a credential the editor may not use
        raise EditError(str(exc), "definition") from exc


#
# Graphs of a definition
#


def _list(value: Any) -> list:
    """A draft may hold anything where a list belongs: it counts as empty."""
    return value if isinstance(value, list) else []


def iter_graphs(definition: dict) -> Iterator[tuple[str, str, dict]]:
    """Every graph of a definition, nested ones included: (key, label, graph dict)."""
    yield "", "Top level", definition
    yield from _nested_graphs(definition)


def _nested_graphs(graph: dict) -> Iterator[tuple[str, str, dict]]:
    for node in _list(graph.get("nodes")):
        if not isinstance(node, dict):
            continue
        node_id = str(node.get("id", ""))
        if isinstance(node.get("body"), dict):
            yield f"{node_id}.body", f"Body of {node_id}", node["body"]
            yield from _nested_graphs(node["body"])
        for i, branch in enumerate(_list(node.get("branches"))):
            if isinstance(branch, dict):
                yield f"{node_id}.branches[{i}]", f"Branch {i + 1} of {node_id}", branch
                yield from _nested_graphs(branch)


def all_node_ids(definition: dict) -> list[str]:
    return [
        str(n.get("id"))
        for _k, _l, g in iter_graphs(definition)
        for n in _list(g.get("nodes"))
        if isinstance(n, dict) and n.get("id")
    ]


def graph_by_key(definition: dict, key: str) -> dict | None:
    """The graph named by `key`: "" top level, "<id>.body", "<id>.branches[i]"; "<id>.branches[new]"
    appends a new branch to the parallel node and returns it. None when there is no such graph."""
    if not key:
        return definition
    m = GRAPH_KEY_RE.fullmatch(key)
    if not m:
        return None
    for _k, _l, graph in list(iter_graphs(definition)):
        for node in _list(graph.get("nodes")):
            if not isinstance(node, dict) or node.get("id") != m.group(1):
                continue
            if m.group(2) == "body" and node.get("type") == "loop":
                body = node.setdefault("body", {"nodes": [], "edges": []})
                return body if isinstance(body, dict) else None
            if m.group(3) is not None and node.get("type") == "parallel":
                branches = node.setdefault("branches", [])
                if not isinstance(branches, list):
                    return None
                if m.group(3) == "new":
                    branches.append({"nodes": [], "edges": []})
                    return branches[-1]
                index = int(m.group(3))
                return branches[index] if index < len(branches) and isinstance(branches[index], dict) else None
    return None


def graph_key_of(definition: dict, node_id: str) -> str | None:
    for key, _label, graph in iter_graphs(definition):
        if any(isinstance(n, dict) and n.get("id") == node_id for n in _list(graph.get("nodes"))):
            return key
    return None


def graph_of(definition: dict, node_id: str) -> dict | None:
    key = graph_key_of(definition, node_id)
    return None if key is None else graph_by_key(definition, key)


def node_in(graph: dict, node_id: str) -> dict | None:
    return next((n for n in _list(graph.get("nodes")) if isinstance(n, dict) and n.get("id") == node_id), None)


def rename_references(graph: dict, old: str, new: str) -> None:
    """Point the graph's edges, cases, defaults and error handlers at a renamed node."""
    for edge in _list(graph.get("edges")):
        for end in ("from", "to"):
            if isinstance(edge, dict) and edge.get(end) == old:
                edge[end] = new
    for node in _list(graph.get("nodes")):
        if not isinstance(node, dict):
            continue
        for key in ("on_error", "default", "timeout_to"):
            if node.get(key) == old:
                node[key] = new
        for case in _list(node.get("cases")):
            if isinstance(case, dict) and case.get("to") == old:
                case["to"] = new
        if isinstance(node.get("routes"), dict):
            for decision, target in node["routes"].items():
                if target == old:
                    node["routes"][decision] = new


def _drop_references(graph: dict, node_id: str) -> None:
    graph["edges"] = [
        e for e in _list(graph.get("edges")) if not (isinstance(e, dict) and node_id in (e.get("from"), e.get("to")))
    ]
    for node in _list(graph.get("nodes")):
        if not isinstance(node, dict):
            continue
        for key in ("on_error", "default", "timeout_to"):
            if node.get(key) == node_id:
                node.pop(key)
        if node.get("cases"):
            node["cases"] = [c for c in _list(node["cases"]) if not (isinstance(c, dict) and c.get("to") == node_id)]
        if isinstance(node.get("routes"), dict):
            node["routes"] = {d: t for d, t in node["routes"].items() if t != node_id}


#
# Operations (plain functions over a definition; each returns the version's comment)
#


def node_skeleton(node_type: str, node_id: str, activity: str = "") -> dict:
    """A new node of `node_type` with the fields its type needs, empty."""
    node: dict[str, Any] = {"id": node_id, "type": node_type}
    if node_type == "activity":
        node.update(activity=activity, params={})
    elif node_type == "condition":
        node["cases"] = []
    elif node_type == "loop":
        node.update(mode="for_each", body={"nodes": [], "edges": []})
    elif node_type == "parallel":
        node.update(branches=[], join="all")
    elif node_type == "timer":
        node["duration"] = 60
    return node


def fresh_id(definition: dict, base: str) -> str:
    """`base` if no node has it, else base_2, base_3 …"""
    taken = set(all_node_ids(definition))
    root = re.sub(r"[^A-Za-z0-9_-]", "_", base)[:56] or "node"
    if not root[0].isalpha():
        root = "n" + root
    candidate, n = root, 2
    while candidate in taken:
        candidate = f"{root}_{n}"
        n += 1
    return candidate


def _position(x: Any, y: Any) -> dict[str, float]:
    try:
        px, py = float(x), float(y)
    except (TypeError, ValueError):
        raise EditError("x and y must be numbers", "x") from None
    if not (abs(px) < 1e6 and abs(py) < 1e6):
        raise EditError("x and y must be between -1,000,000 and 1,000,000", "x")
    return {"x": round(px, 1), "y": round(py, 1)}


def add_node(
    definition: dict,
    *,
    node_type: str,
    node_id: str | None = None,
    activity: str = "",
    graph: str = "",
    after: str | None = None,
    x: Any = None,
    y: Any = None,
) -> tuple[str, dict]:
    """Add a node to the graph `graph` (see graph_by_key), connected after `after` (a node of the
    same graph; a condition gets it as its default when it has none). Returns (comment, node)."""
    if node_type not in NODE_TYPES:
        raise EditError(f"unknown node type '{node_type}'", "type")
    if node_type == "activity" and not activity:
        raise EditError("choose the activity this node runs", "activity")
    node_id = node_id or fresh_id(
        definition, activity.replace(".", "_") if node_type == "activity" and activity else node_type
    )
    if not ID_RE.fullmatch(node_id):
        raise EditError("node ids are letters, digits, _ and -, starting with a letter", "id")
    if node_id in all_node_ids(definition):
        raise EditError(f"a node with id '{node_id}' already exists", "id")
    target = graph_by_key(definition, graph or "")
    if target is None:
        raise EditError(f"there is no graph '{graph}' (it may have been removed)", "graph")
    node = node_skeleton(node_type, node_id, activity)
    if x is not None or y is not None:
        node["ui"] = _position(x, y)
    nodes = target.setdefault("nodes", [])
    if after:
        source = node_in(target, after)
        if source is None:
            raise EditError(f"'{after}' is in another graph; edges stay inside one graph", "after")
        nodes.append(node)
        if source.get("type") == "condition":
            source["default"] = source.get("default") or node_id
        else:
            target.setdefault("edges", []).append({"from": after, "to": node_id})
    else:
        nodes.append(node)
    return f"Added node {node_id}", node


def move_node(definition: dict, node_id: str, x: Any, y: Any, *, graph: str | None = None) -> str:
    """Place the node at (x, y) (kept in its `ui`); with `graph`, move it into that graph too
    (a loop body, a parallel branch, or "" for the top level): its connections stay behind."""
    current = graph_key_of(definition, node_id)
    if current is None:
        raise EditError(f"there is no node '{node_id}'", "node")
    comment = f"Moved node {node_id}"
    if graph is not None and graph != current:
        if graph.split(".", 1)[0] == node_id or _is_inside(definition, graph, node_id):
            raise EditError("a node cannot be moved inside itself", "graph")
        source = graph_by_key(definition, current)
        target = graph_by_key(definition, graph)
        if source is None or target is None:
            raise EditError(f"there is no graph '{graph}'", "graph")
        node = node_in(source, node_id)
        source["nodes"] = [n for n in _list(source.get("nodes")) if n is not node]
        _drop_references(source, node_id)
        target.setdefault("nodes", []).append(node)
        comment = f"Moved node {node_id} into {graph or 'the top level'}"
    node = node_in(graph_by_key(definition, graph_key_of(definition, node_id) or "") or {}, node_id)
    assert node is not None  # graph_key_of found it above
    ui = given if isinstance(given := node.get("ui"), dict) else {}
    node["ui"] = {**ui, **_position(x, y)}
    return comment


def _is_inside(definition: dict, graph_key: str, node_id: str) -> bool:
    """Is the graph `graph_key` nested (at any depth) in node `node_id`?"""
    owner = graph_key.split(".", 1)[0] if graph_key else None
    seen = set()
    while owner and owner not in seen:
        if owner == node_id:
            return True
        seen.add(owner)
        parent_key = graph_key_of(definition, owner)
        owner = parent_key.split(".", 1)[0] if parent_key else None
    return False


def connect(definition: dict, source: str, target: str, label: str | None = None) -> str:
    """Connect two nodes of one graph. From a condition: its default first, then a new case
    (whose `when` the builder fills in on the node's form)."""
    graph = graph_of(definition, source)
    if graph is None:
        raise EditError(f"there is no node '{source}'", "source")
    if graph_of(definition, target) is not graph:
        if graph_key_of(definition, target) is None:
            raise EditError(f"there is no node '{target}'", "target")
        raise EditError("edges connect nodes of one graph (the top level, one loop body or one branch)", "target")
    if source == target:
        raise EditError("an edge cannot lead back to its own node; repeat work with a loop", "target")
    node = node_in(graph, source)
    assert node is not None  # graph_of found it above
    if node.get("type") == "condition":
        if node.get("default") == target or any(
            isinstance(c, dict) and c.get("to") == target for c in _list(node.get("cases"))
        ):
            raise EditError(f"{source} already leads to {target}", "target")
        if not node.get("default"):
            node["default"] = target
            return f"Connected {source} -> {target} (default)"
        case: dict[str, Any] = {"when": {}, "to": target}
        if label:
            case["label"] = label
        node.setdefault("cases", []).append(case)
        return f"Connected {source} -> {target} (new case)"
    if any(
        isinstance(e, dict) and e.get("from") == source and e.get("to") == target for e in _list(graph.get("edges"))
    ):
        raise EditError(f"there is already an edge {source} → {target}", "target")
    edge: dict[str, Any] = {"from": source, "to": target}
    if label:
        edge["label"] = label
    graph.setdefault("edges", []).append(edge)
    return f"Added edge {source} -> {target}"


def disconnect(definition: dict, source: str, target: str, kind: str = "edge") -> str:
    """Remove the connection source → target: an edge, or (`kind`) a condition's case/default, an
    error handler, a timeout route or an approval route."""
    graph = graph_of(definition, source)
    node = node_in(graph, source) if graph is not None else None
    if graph is None or node is None:
        raise EditError(f"there is no node '{source}'", "source")
    if kind == "edge":
        edges = _list(graph.get("edges"))
        index = next(
            (
                i
                for i, e in enumerate(edges)
                if isinstance(e, dict) and e.get("from") == source and e.get("to") == target
            ),
            None,
        )
        if index is None:
            raise EditError(f"there is no edge {source} → {target}", "target")
        edges.pop(index)
    elif kind in ("default", "on_error", "timeout_to") and node.get(kind) == target:
        node.pop(kind)
    elif kind == "case" and any(isinstance(c, dict) and c.get("to") == target for c in _list(node.get("cases"))):
        cases = _list(node.get("cases"))
        cases.pop(next(i for i, c in enumerate(cases) if isinstance(c, dict) and c.get("to") == target))
    elif kind == "route" and isinstance(node.get("routes"), dict) and target in node["routes"].values():
        node["routes"] = {d: t for d, t in node["routes"].items() if t != target}
    else:
        raise EditError(f"there is no {kind} connection {source} → {target}", "kind")
    return f"Removed edge {source} -> {target}"


def remove_edge_at(definition: dict, graph_key: str, index: int) -> str:
    """Remove the graph's edge number `index` (the editor's edge table addresses edges this way)."""
    graph = graph_by_key(definition, graph_key) if "[new]" not in graph_key else None
    edges = _list((graph or {}).get("edges"))
    if graph is None or not 0 <= index < len(edges):
        raise EditError("That edge no longer exists; the page was out of date.", "index")
    removed = edges.pop(index)
    return f"Removed edge {removed.get('from')} -> {removed.get('to')}"


def label_edge(definition: dict, source: str, target: str, label: str, kind: str = "edge") -> str:
    """Set (or, with "", clear) the label of an edge or of a condition's case."""
    graph = graph_of(definition, source)
    if graph is None:
        raise EditError(f"there is no node '{source}'", "source")
    if len(label) > 200:
        raise EditError("labels are at most 200 characters", "label")
    if kind == "case":
        holder = next(
            (
                c
                for c in _list((node_in(graph, source) or {}).get("cases"))
                if isinstance(c, dict) and c.get("to") == target
            ),
            None,
        )
    elif kind == "edge":
        holder = next(
            (
                e
                for e in _list(graph.get("edges"))
                if isinstance(e, dict) and e.get("from") == source and e.get("to") == target
            ),
            None,
        )
    else:
        raise EditError("only edges and condition cases have labels", "kind")
    if holder is None:
        raise EditError(f"there is no edge {source} → {target}", "target")
    if label:
        holder["label"] = label
    else:
        holder.pop("label", None)
    return f"Labelled edge {source} -> {target}"


def delete_node(definition: dict, node_id: str) -> str:
    """Remove the node (and what it contains) with every connection to it."""
    graph = graph_of(definition, node_id)
    if graph is None:
        raise EditError(f"there is no node '{node_id}'", "node")
    graph["nodes"] = [n for n in _list(graph.get("nodes")) if not (isinstance(n, dict) and n.get("id") == node_id)]
    _drop_references(graph, node_id)
    return f"Removed node {node_id}"


def replace_definition(definition: dict, new: Any) -> str:
    """Replace the whole definition (undo and redo send the one they go back or forward to)."""
    if not isinstance(new, dict):
        raise EditError("The definition must be a JSON object.", "definition")
    definition.clear()
    definition.update(copy.deepcopy(new))
    return "Replaced the definition"


#
# The operation format (canvas and API)
#

OPERATIONS = ("add_node", "move_node", "connect", "disconnect", "label_edge", "delete_node", "replace")


def _text(op: dict, key: str, *, required: bool = True, default: str = "") -> str:
    value = op.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, str) or (required and not value):
        raise EditError(f"{key} is required (a string)", key)
    return value


def apply_operation(definition: dict, op: Any) -> str:
    """Apply one operation `{"op": …, …}` (see docs/api.md, "Editing a definition"); returns its comment."""
    if not isinstance(op, dict):
        raise EditError("each operation must be an object", "op")
    kind = op.get("op")
    if kind == "add_node":
        comment, _node = add_node(
            definition,
            node_type=_text(op, "type"),
            node_id=_text(op, "id", required=False) or None,
            activity=_text(op, "activity", required=False),
            graph=_text(op, "graph", required=False),
            after=_text(op, "after", required=False) or None,
            x=op.get("x"),
            y=op.get("y"),
        )
        return comment
    if kind == "move_node":
        graph = op.get("graph")
        if graph is not None and not isinstance(graph, str):
            raise EditError("graph must be a string", "graph")
        return move_node(definition, _text(op, "node"), op.get("x"), op.get("y"), graph=graph)
    if kind == "connect":
        return connect(definition, _text(op, "source"), _text(op, "target"), _text(op, "label", required=False) or None)
    if kind == "disconnect":
        return disconnect(
            definition, _text(op, "source"), _text(op, "target"), _text(op, "kind", required=False, default="edge")
        )
    if kind == "label_edge":
        return label_edge(
            definition,
            _text(op, "source"),
            _text(op, "target"),
            _text(op, "label", required=False).strip(),
            _text(op, "kind", required=False, default="edge"),
        )
    if kind == "delete_node":
        return delete_node(definition, _text(op, "node"))
    if kind == "replace":
        return replace_definition(definition, op.get("definition"))
    raise EditError(f"unknown operation '{kind}'; one of {', '.join(OPERATIONS)}", "op")


def apply_operations(workflow: Workflow, ops: Any, *, acting_user: Any, expected_revision: str | None) -> Workflow:
    """Apply `ops` in order as ONE version (all or nothing). Raises EditError, EditConflict."""
    if not isinstance(ops, list) or not ops:
        raise EditError("ops must be a non-empty list of operations", "ops")
    if len(ops) > 500:
        raise EditError("at most 500 operations at a time", "ops")

    def change(definition: dict) -> str:
        comments = []
        for i, op in enumerate(ops):
            try:
                comments.append(apply_operation(definition, op))
            except EditError as exc:
                if len(ops) > 1:
                    raise EditError(f"operation {i + 1}: {exc.message}", f"ops[{i}].{exc.field or 'op'}") from None
                raise
        return comments[0] if len(comments) == 1 else f"{len(comments)} edits: " + "; ".join(comments)[:400]

    return edit_definition(workflow, change, acting_user=acting_user, expected_revision=expected_revision)
