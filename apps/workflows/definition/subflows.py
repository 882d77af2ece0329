"""Subflows: a `subflow` node inlines a shared, versioned sub-graph at compile time.

    {"id": "kyc", "type": "subflow", "subflow": "kyc-check", "version": 2,
     "with": {"customer": "$.input.customer"}, "output": "kyc"}

becomes, in place of the node (so the steps run in the parent's run and history):

    kyc__start   set (the `with` values, as variables) or noop
    kyc__<id>    every node of the sub-graph, ids (and references to them) namespaced
    kyc          noop whose output is the sub-graph's `result`; the node's `output` and
                 the parent's edges from `kyc` stay on it, edges to `kyc` go to kyc__start

Edges: kyc__start -> the sub-graph's first node; each node of the sub-graph without a way
on (no edge, case, route or timeout path) -> kyc. The node's `on_error` guards every
top-level step of the sub-graph that has no handler of its own. Input and variables are the
parent's. Versions are immutable and pinned by number, so a compiled plan never changes
under a running run.

This module is pure data: sub-graphs come from a resolver the workflows app registers
(`set_resolver`), so the compiler never imports models.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SEPARATOR = "__"
MAX_DEPTH = 5

# (slug, version) -> the version's graph {"nodes", "edges"?, "result"?}, or (field, message)
# saying why there is none ("subflow" when the slug is unknown, "version" when the number is).
Resolver = Callable[[str, int], "dict | tuple[str, str]"]
_resolver: Resolver | None = None


def set_resolver(fn: Resolver | None) -> None:
    """Called by the workflows app when it is ready."""
    global _resolver
    _resolver = fn


@dataclass(frozen=True)
class ExpansionProblem:
    message: str
    node: str
    field: str
    code: str = "invalid"


def has_subflows(definition: Any) -> bool:
    return any(node.get("type") == "subflow" for node in _all_nodes(definition))


def _all_nodes(graph: Any):
    if not isinstance(graph, dict):
        return
    nodes = graph.get("nodes")
    for node in nodes if isinstance(nodes, list) else []:  # a draft may hold anything
        if isinstance(node, dict):
            yield node
            yield from _all_nodes(node.get("body"))
            branches = node.get("branches")
            for branch in branches if isinstance(branches, list) else []:  # a draft may hold anything
                yield from _all_nodes(branch)


def _graph_ids(graph: dict) -> set[str]:
    return {n["id"] for n in _all_nodes(graph) if isinstance(n.get("id"), str)}


_STEP_REF = re.compile(r"(\$\.steps\.)([A-Za-z][A-Za-z0-9_\-]*)")


def _rename_refs(value: Any, rename: dict[str, str]) -> Any:
    """Every `$.steps.<id>` naming a renamed node, in any string of `value`, renamed."""
    if isinstance(value, str):
        return (
            _STEP_REF.sub(lambda m: m.group(1) + rename.get(m.group(2), m.group(2)), value)
            if "$.steps." in value
            else value
        )
    if isinstance(value, list):
        return [_rename_refs(v, rename) for v in value]
    if isinstance(value, dict):
        return {k: _rename_refs(v, rename) for k, v in value.items()}
    return value


def _rename_targets(node: dict, rename: dict[str, str]) -> None:
    """Node-id fields of one node (not its nested graphs, done on their own)."""
    for key in ("id", "on_error", "default", "timeout_to"):
        if isinstance(node.get(key), str) and node[key] in rename:
            node[key] = rename[node[key]]
    if node.get("type") == "await_child" and node.get("child") in rename:
        node["child"] = rename[node["child"]]
    if isinstance(node.get("cases"), list):
        for case in node["cases"]:
            if isinstance(case, dict) and case.get("to") in rename:
                case["to"] = rename[case["to"]]
    if isinstance(node.get("routes"), dict):
        node["routes"] = {k: rename.get(v, v) if isinstance(v, str) else v for k, v in node["routes"].items()}


def _rename_graph(graph: dict, rename: dict[str, str]) -> None:
    """Rename ids and targets everywhere in a graph, nested bodies and branches included."""
    for node in graph.get("nodes") or []:
        if not isinstance(node, dict):
            continue
        _rename_targets(node, rename)
        if isinstance(node.get("body"), dict):
            _rename_graph(node["body"], rename)
        for branch in node.get("branches") or []:
            if isinstance(branch, dict):
                _rename_graph(branch, rename)
    for edge in graph.get("edges") or []:
        if isinstance(edge, dict):
            for key in ("from", "to"):
                if edge.get(key) in rename:
                    edge[key] = rename[edge[key]]


def _has_way_on(node: dict, sources: set[str | None]) -> bool:
    return bool(
        node.get("id") in sources
        or node.get("cases")
        or node.get("default")
        or node.get("routes")
        or node.get("timeout_to")
    )


def _inline(node: dict, graph: dict) -> tuple[list[dict], list[dict], str]:
    """The nodes and edges replacing one subflow node, and the id its incoming edges now take."""
    ns = node["id"]
    graph = copy.deepcopy(graph)
    inner_ids = _graph_ids(graph)
    rename = {i: f"{ns}{SEPARATOR}{i}" for i in inner_ids}
    _rename_graph(graph, rename)
    graph = _rename_refs(graph, rename)
    nodes = [n for n in graph.get("nodes") or [] if isinstance(n, dict)]
    edges = [e for e in graph.get("edges") or [] if isinstance(e, dict)]
    start_id = f"{ns}{SEPARATOR}start"
    with_values = node.get("with")
    start: dict[str, Any] = {"id": start_id, "type": "activity", "name": f"{node.get('name') or ns}: start"}
    if with_values:
        start.update(activity="set", params={"values": with_values})
    else:
        start.update(activity="noop", params={})
    end: dict[str, Any] = {
        "id": ns,
        "type": "activity",
        "activity": "noop",
        "params": {},
        "name": node.get("name") or ns,
    }
    if graph.get("result") is not None:
        end["params"] = {"value": graph["result"]}
    for key in ("output", "description", "ui"):
        if key in node:
            end[key] = node[key]
    if isinstance(node.get("on_error"), str):
        for inner in nodes:
            inner.setdefault("on_error", node["on_error"])
        end["on_error"] = node["on_error"]
    sources = {e.get("from") for e in edges}
    new_edges = [{"from": start_id, "to": nodes[0]["id"]}] if nodes else [{"from": start_id, "to": ns}]
    new_edges += edges
    for inner in nodes:
        if not _has_way_on(inner, sources):
            new_edges.append({"from": inner["id"], "to": ns})
    return [start, *nodes, end], new_edges, start_id


NodeCheck = Callable[[dict], bool]
UNUSED = ("retry", "timeout", "output_map")


def expand(
    definition: Any, *, node_ok: NodeCheck = lambda node: True, depth: int = 0
) -> tuple[Any, list[ExpansionProblem]]:
    """The definition with every subflow node inlined (recursively, up to MAX_DEPTH levels),
    and the problems met (unknown subflow or version, no resolver, too deep, fields a subflow
    node does not use). A subflow node that `node_ok` (the schema check) refuses, or that
    cannot be resolved, stays as it is. Returns the definition itself when it has no subflows."""
    if not has_subflows(definition):
        return definition, []
    problems: list[ExpansionProblem] = []
    result = copy.deepcopy(definition)
    _expand_graph(result, problems, depth, node_ok)
    return result, problems


def _expand_graph(
    graph: dict, problems: list[ExpansionProblem], depth: int, node_ok: NodeCheck = lambda node: True
) -> None:
    nodes = graph.get("nodes")
    if not isinstance(nodes, list):
        return
    for node in nodes:
        if isinstance(node, dict):
            if isinstance(node.get("body"), dict):
                _expand_graph(node["body"], problems, depth, node_ok)
            for branch in node.get("branches") or []:
                if isinstance(branch, dict):
                    _expand_graph(branch, problems, depth, node_ok)
    out_nodes: list = []
    edges = (
        [e for e in graph.get("edges") or [] if isinstance(e, dict)]
        if isinstance(graph.get("edges"), list)
        else graph.get("edges")
    )
    entry_of: dict[str, str] = {}
    extra_edges: list[dict] = []
    for node in nodes:
        if not (isinstance(node, dict) and node.get("type") == "subflow"):
            out_nodes.append(node)
            continue
        node_id, slug, version = node.get("id"), node.get("subflow"), node.get("version")
        if not node_ok(node) or not (isinstance(node_id, str) and isinstance(slug, str) and isinstance(version, int)):
            out_nodes.append(node)  # the checker names what is wrong with it
            continue
        unused = [key for key in UNUSED if key in node]
        for key in unused:
            problems.append(
                ExpansionProblem(f"a subflow node does not use {key}; set it on the sub-graph's steps", node_id, key)
            )
        if unused:
            out_nodes.append(node)
            continue
        if depth >= MAX_DEPTH:
            problems.append(
                ExpansionProblem(f"subflows nest more than {MAX_DEPTH} deep", node_id, "subflow", "subflow_depth")
            )
            out_nodes.append(node)
            continue
        sub = _resolver(slug, version) if _resolver is not None else ("subflow", "subflows are not available here")
        if not isinstance(sub, dict):
            field, message = sub
            problems.append(ExpansionProblem(message, node_id, field, "unknown_subflow"))
            out_nodes.append(node)
            continue
        sub, inner_problems = expand(sub, node_ok=node_ok, depth=depth + 1)
        for p in inner_problems:
            problems.append(
                ExpansionProblem(f"in subflow '{slug}' version {version}: {p.message}", node_id, "subflow", p.code)
            )
        inlined_nodes, inlined_edges, start_id = _inline(node, sub)
        out_nodes.extend(inlined_nodes)
        extra_edges.extend(inlined_edges)
        entry_of[node_id] = start_id
    if not entry_of:
        return
    graph["nodes"] = out_nodes
    # Edges, cases, routes and timeout paths into a subflow now enter at its start node.
    for node in out_nodes:
        if isinstance(node, dict) and node.get("id") not in entry_of:
            for key in ("default", "timeout_to", "on_error"):
                if node.get(key) in entry_of:
                    node[key] = entry_of[node[key]]
            if isinstance(node.get("cases"), list):
                for case in node["cases"]:
                    if isinstance(case, dict) and case.get("to") in entry_of:
                        case["to"] = entry_of[case["to"]]
            if isinstance(node.get("routes"), dict):
                node["routes"] = {k: entry_of.get(v, v) if isinstance(v, str) else v for k, v in node["routes"].items()}
    if isinstance(edges, list):
        for edge in edges:
            if edge.get("to") in entry_of:
                edge["to"] = entry_of[edge["to"]]
        graph["edges"] = edges + extra_edges
    else:
        graph["edges"] = extra_edges
