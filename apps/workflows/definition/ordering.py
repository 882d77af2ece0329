"""Key order for showing a definition to people.

Definitions are stored as jsonb, which keeps keys sorted by length then bytes: read back, a
document starts with "edges", edges read {"to", "from"} and nodes {"id", "type", "params", ...,
"activity"}. Shown in that order (JSON view, API, exports) a definition looks scrambled, so it is
put back in the order people write it: the document's own fields, then each node's identity, what it
does, and its wiring; keys not listed keep their place after the listed ones.
"""

from __future__ import annotations

from typing import Any

DOCUMENT_KEYS = (
    "format_version",
    "name",
    "description",
    "input_schema",
    "variables",
    "signals",
    "nodes",
    "edges",
    "output",
)
NODE_KEYS = (
    "id",
    "type",
    "name",
    "description",
    "activity",
    "workflow",
    "mode",
    "child",
    "signal",
    "title",
    "items",
    "id_key",
    "depends_on_key",
    "duration_key",
    "max_concurrent",
    "fail_fast",
    "params",
    "input",
    "condition",
    "cases",
    "default",
    "join",
    "branches",
    "body",
    "concurrency",
    "complete_when",
    "aggregate",
    "max_iterations",
    "long_running",
    "continue_every",
    "duration",
    "until",
    "assignees",
    "outcomes",
    "routes",
    "due_in",
    "output",
    "output_map",
    "retry",
    "timeout",
    "timeout_to",
    "on_error",
    "ui",
)
GRAPH_KEYS = ("nodes", "edges", "result")
EDGE_KEYS = ("from", "to", "label")
CASE_KEYS = ("when", "to", "label")
CONDITION_KEYS = ("var", "op", "value", "value_from", "all", "any", "not")
RETRY_KEYS = ("max_attempts", "backoff", "interval", "multiplier", "max_interval", "non_retryable")


def _ordered(value: Any, keys: tuple[str, ...]) -> Any:
    if not isinstance(value, dict):
        return value
    out = {k: value[k] for k in keys if k in value}
    out.update((k, v) for k, v in value.items() if k not in out)
    return out


def _condition(cond: Any) -> Any:
    cond = _ordered(cond, CONDITION_KEYS)
    if isinstance(cond, dict):
        for key in ("all", "any"):
            if isinstance(cond.get(key), list):
                cond[key] = [_condition(c) for c in cond[key]]
        if "not" in cond:
            cond["not"] = _condition(cond["not"])
    return cond


def _graph(graph: Any) -> Any:
    graph = _ordered(graph, GRAPH_KEYS)
    if isinstance(graph, dict):
        if isinstance(graph.get("nodes"), list):
            graph["nodes"] = [_node(n) for n in graph["nodes"]]
        if isinstance(graph.get("edges"), list):
            graph["edges"] = [_ordered(e, EDGE_KEYS) for e in graph["edges"]]
    return graph


def _node(node: Any) -> Any:
    node = _ordered(node, NODE_KEYS)
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("cases"), list):
        node["cases"] = [_ordered(c, CASE_KEYS) for c in node["cases"]]
        for case in node["cases"]:
            if isinstance(case, dict) and "when" in case:
                case["when"] = _condition(case["when"])
    if "condition" in node:
        node["condition"] = _condition(node["condition"])
    if "retry" in node:
        node["retry"] = _ordered(node["retry"], RETRY_KEYS)
    if "body" in node:
        node["body"] = _graph(node["body"])
    if isinstance(node.get("branches"), list):
        node["branches"] = [_graph(b) for b in node["branches"]]
    return node


def ordered_definition(definition: Any) -> Any:
    """A copy of `definition` with keys in reading order (same content; anything not a dict as is)."""
    if not isinstance(definition, dict):
        return definition
    doc = _ordered(definition, DOCUMENT_KEYS)
    return {
        **doc,
        **{k: v for k, v in _graph({"nodes": doc.get("nodes"), "edges": doc.get("edges")}).items() if k in doc},
    }
