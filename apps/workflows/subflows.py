"""Shared subflows: publish versions, and resolve (slug, version) for the compiler.

The compiler (definition/subflows.py) is pure data; `resolve` is registered as its
resolver when the app is ready.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max

from .definition import subflows as inline
from .definition.validator import Problem, validate
from .models import Subflow, SubflowVersion


def resolve(slug: str, version: int) -> dict | tuple[str, str]:
    """The graph of `slug` version `version`, or (field, why not)."""
    graph = SubflowVersion.objects.filter(subflow__slug=slug, number=version).values_list("graph", flat=True).first()
    if graph is not None:
        return graph
    latest = SubflowVersion.objects.filter(subflow__slug=slug).aggregate(n=Max("number"))["n"]
    if latest is None:
        return "subflow", f"there is no subflow '{slug}'" if not Subflow.objects.filter(
            slug=slug
        ).exists() else f"subflow '{slug}' has no versions"
    return "version", f"subflow '{slug}' has versions 1 to {latest}, not {version}"


def check_graph(graph: Any) -> list[Problem]:
    """Problems with a sub-graph, checked as a workflow of its own (fields named as in it)."""
    if not isinstance(graph, dict):
        return [Problem(message="the graph must be an object with nodes and edges", field="graph", code="type")]
    extra = sorted(set(graph) - {"nodes", "edges", "result"})
    problems = (
        [
            Problem(
                message=f"a subflow graph has only nodes, edges and result, not {', '.join(extra)}",
                field="graph",
                code="schema",
            )
        ]
        if extra
        else []
    )
    definition = {"format_version": 1, "nodes": graph.get("nodes"), "edges": graph.get("edges", [])}
    if graph.get("result") is not None:
        definition["output"] = graph["result"]
    problems += [
        Problem(message=p.message, node=p.node, field=f"graph.{p.field}" if p.field else "graph", code=p.code)
        for p in validate(definition)
    ]
    return problems


@transaction.atomic
def create_subflow(*, owner, slug: str, name: str, graph: dict, description: str = "", note: str = "") -> Subflow:
    """A new subflow with version 1 (check_graph first)."""
    subflow = Subflow.objects.create(owner=owner, slug=slug, name=name, description=description)
    SubflowVersion.objects.create(
        subflow=subflow, number=1, graph=graph, note=note or "First version", created_by=owner
    )
    return subflow


@transaction.atomic
def publish_version(subflow: Subflow, *, graph: dict, acting_user, note: str = "") -> SubflowVersion:
    """The next version of `subflow` (check_graph first). Takes the subflow's row lock so two
    publishers get consecutive numbers."""
    Subflow.objects.select_for_update().filter(pk=subflow.pk).first()
    latest = subflow.versions.aggregate(n=Max("number"))["n"] or 0
    return SubflowVersion.objects.create(
        subflow=subflow, number=latest + 1, graph=graph, note=note, created_by=acting_user
    )


def can_publish(user, subflow: Subflow) -> bool:
    """Its owner, or whoever holds the model permission (superusers; no role grants it). Being
    staff is not enough: the operator and admin roles make their users staff for the admin site."""
    return bool(user.is_authenticated and (subflow.owner_id == user.pk or user.has_perm("workflows.change_subflow")))


def register() -> None:
    inline.set_resolver(resolve)
