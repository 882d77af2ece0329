"""The execution plan: the compiled form of a valid definition that the engine walks.

Node ids are unique across the whole definition, nested bodies included, so a
plan can find any node by id. A scope is one graph: the root (""), a loop body
("<loop id>") or a parallel branch ("<parallel id>.<n>").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class NodePlan:
    id: str
    type: str
    spec: dict
    scope: str
    successors: list[str] = field(default_factory=list)
    predecessors: list[str] = field(default_factory=list)
    on_error: str | None = None
    # For an on_error handler: the nodes whose failure it handles.
    handles: list[str] = field(default_factory=list)
    # For loop and parallel nodes: the scopes they own.
    child_scopes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.spec.get("name") or self.id


@dataclass
class ScopePlan:
    id: str
    owner: str | None  # the loop/parallel node that owns this scope; None for the root
    entry: str
    node_ids: list[str]
    result: str | None = None  # JSONPath the scope yields (loop iteration / branch result)

    @property
    def last_node(self) -> str:
        return self.node_ids[-1]


@dataclass
class Plan:
    nodes: dict[str, NodePlan]
    scopes: dict[str, ScopePlan]
    input_schema: dict | None
    variables: dict[str, Any]
    output: Any
    signals: dict[str, dict]
    raw: dict
    # node id -> targets of its explicit edges (not condition cases, routes or timeout paths)
    raw_edges: dict[str, set[str]] = field(default_factory=dict)

    def node(self, node_id: str) -> NodePlan:
        return self.nodes[node_id]

    def scope(self, scope_id: str) -> ScopePlan:
        return self.scopes[scope_id]

    @property
    def root(self) -> ScopePlan:
        return self.scopes[""]
