"""Version history of workflows on top of django-reversion: list, get, diff, restore, prune.

A version is a reversion `Version` row of a Workflow (its id is the version id);
its revision carries the author, the time and the note (comment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import Http404
from reversion.models import Revision, Version

from apps.workflows import services as workflow_services
from apps.workflows.models import Workflow

# Fields of a workflow a version holds that matter to users (the rest is bookkeeping).
TRACKED_FIELDS = ("name", "slug", "description", "tags", "is_active", "definition")
NESTED_KEYS = ("body", "branches")


def versions_of(workflow: Workflow) -> QuerySet[Version]:
    """The workflow's versions, newest first, with their revisions (author, time, note)."""
    return Version.objects.get_for_object(workflow).select_related("revision", "revision__user").order_by("-pk")


def get_version(workflow: Workflow, version_id: Any) -> Version:
    try:
        return versions_of(workflow).get(pk=version_id)
    except (Version.DoesNotExist, ValueError, TypeError):
        raise Http404("No such version of this workflow.") from None


def version_fields(version: Version) -> dict[str, Any]:
    data = version.field_dict
    return {key: data.get(key) for key in TRACKED_FIELDS}


def version_number(version: Version) -> int:
    """1-based position among the kept versions of its workflow (pruning renumbers nothing: it
    counts versions up to this one that still exist)."""
    return Version.objects.filter(
        content_type_id=version.content_type_id, object_id=version.object_id, pk__lte=version.pk
    ).count()


#
# Diff
#


@dataclass
class FieldChange:
    field: str
    before: Any
    after: Any

    def as_dict(self) -> dict:
        return {"field": self.field, "from": self.before, "to": self.after}


@dataclass
class NodeChange:
    id: str
    change: str  # added, removed, changed
    path: str  # where the node lives: "" at the top level, "loop.body", "par.branches[1]"
    type: str | None = None
    fields: list[FieldChange] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "change": self.change,
            "path": self.path,
            "type": self.type,
            "fields": [f.as_dict() for f in self.fields],
        }


def _field_changes(before: Any, after: Any, prefix: str = "") -> list[FieldChange]:
    """Leaf-level differences between two JSON values, as dotted paths."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[FieldChange] = []
        for key in sorted(set(before) | set(after), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in before:
                out.append(FieldChange(path, None, after[key]))
            elif key not in after:
                out.append(FieldChange(path, before[key], None))
            else:
                out.extend(_field_changes(before[key], after[key], path))
        return out
    if before != after:
        return [FieldChange(prefix or "value", before, after)]
    return []


def _walk(definition: dict | None) -> tuple[dict[str, tuple[str, dict]], dict[tuple[str, str, str], dict]]:
    """Every node (by id, with its path) and edge (by scope, from, to), nested bodies included."""
    nodes: dict[str, tuple[str, dict]] = {}
    edges: dict[tuple[str, str, str], dict] = {}

    def listed(value: Any) -> list:
        return value if isinstance(value, list) else []  # a draft may hold anything there

    def visit(graph: dict, path: str) -> None:
        for node in listed(graph.get("nodes")):
            if not isinstance(node, dict) or "id" not in node:
                continue
            nodes[str(node["id"])] = (path, node)
            body = node.get("body")
            if isinstance(body, dict):
                visit(body, f"{node['id']}.body")
            for i, branch in enumerate(listed(node.get("branches"))):
                if isinstance(branch, dict):
                    visit(branch, f"{node['id']}.branches[{i}]")
        for edge in listed(graph.get("edges")):
            if isinstance(edge, dict):
                edges[(path, str(edge.get("from")), str(edge.get("to")))] = edge

    visit(definition if isinstance(definition, dict) else {}, "")
    return nodes, edges


def diff_definitions(before: dict | None, after: dict | None) -> dict[str, Any]:
    """Nodes and edges added, removed and changed (field by field), nested bodies included,
    plus changes of the definition's other top-level fields (variables, input_schema, output)."""
    old_nodes, old_edges = _walk(before)
    new_nodes, new_edges = _walk(after)
    nodes: list[NodeChange] = []
    for node_id in sorted(set(old_nodes) | set(new_nodes)):
        if node_id not in old_nodes:
            path, node = new_nodes[node_id]
            nodes.append(NodeChange(node_id, "added", path, node.get("type")))
        elif node_id not in new_nodes:
            path, node = old_nodes[node_id]
            nodes.append(NodeChange(node_id, "removed", path, node.get("type")))
        else:
            (old_path, old), (new_path, new) = old_nodes[node_id], new_nodes[node_id]
            strip = lambda n: {k: v for k, v in n.items() if k not in NESTED_KEYS}  # noqa: E731  (children diffed on their own)
            changes = _field_changes(strip(old), strip(new))
            if old_path != new_path:
                changes.insert(0, FieldChange("(position)", old_path or "top level", new_path or "top level"))
            if changes:
                nodes.append(NodeChange(node_id, "changed", new_path, new.get("type"), changes))
    edges = []
    for key in sorted(set(old_edges) | set(new_edges)):
        path, src, dst = key
        entry: dict[str, Any] = {"from": src, "to": dst, "path": path}
        if key not in old_edges:
            edges.append({**entry, "change": "added", "fields": []})
        elif key not in new_edges:
            edges.append({**entry, "change": "removed", "fields": []})
        else:
            changes = _field_changes(old_edges[key], new_edges[key])
            if changes:
                edges.append({**entry, "change": "changed", "fields": [c.as_dict() for c in changes]})
    top_before = {k: v for k, v in (before if isinstance(before, dict) else {}).items() if k not in ("nodes", "edges")}
    top_after = {k: v for k, v in (after if isinstance(after, dict) else {}).items() if k not in ("nodes", "edges")}
    return {
        "nodes": [n.as_dict() for n in nodes],
        "edges": edges,
        "definition": [c.as_dict() for c in _field_changes(top_before, top_after)],
    }


def diff_versions(old: Version, new: Version) -> dict[str, Any]:
    a, b = version_fields(old), version_fields(new)
    result = diff_definitions(a.get("definition"), b.get("definition"))
    result["fields"] = [
        c.as_dict()
        for key in TRACKED_FIELDS
        if key != "definition"
        for c in _field_changes(a.get(key), b.get(key), key)
    ]
    result["from"], result["to"] = old.pk, new.pk
    return result


def summary_counts(diff: dict[str, Any]) -> dict[str, int]:
    counts = {"added": 0, "removed": 0, "changed": 0}
    for item in [*diff["nodes"], *diff["edges"]]:
        counts[item["change"]] += 1
    return counts


#
# Restore and prune
#


@transaction.atomic
def restore_version(workflow: Workflow, version: Version, *, acting_user) -> Workflow:
    """Bring the workflow back to `version`'s content as a new version "Restored version N".

    Takes the workflow's row lock. The slug is restored unless another workflow took it meanwhile.
    """
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    data = version_fields(version)
    changes = {
        key: data[key] for key in TRACKED_FIELDS if key in version.field_dict and getattr(workflow, key) != data[key]
    }
    if "slug" in changes and Workflow.objects.filter(slug=changes["slug"]).exclude(pk=workflow.pk).exists():
        changes.pop("slug")
    workflow = workflow_services.update_workflow(
        workflow, acting_user=acting_user, comment=f"Restored version {version.pk}", **changes
    )
    return workflow


def prune_versions(keep: int | None = None) -> int:
    """Delete all but the newest `keep` versions (default settings.WB_VERSIONS_KEEP) of every
    workflow, and revisions left empty; return how many versions went."""
    keep = keep if keep is not None else settings.WB_VERSIONS_KEEP
    content_type = ContentType.objects.get_for_model(Workflow)
    deleted = 0
    crowded = (
        Version.objects.filter(content_type=content_type)
        .values("object_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=keep)
        .values_list("object_id", flat=True)
    )
    for object_id in crowded:
        ids = list(
            Version.objects.filter(content_type=content_type, object_id=object_id)
            .order_by("-pk")
            .values_list("pk", flat=True)[keep:]
        )
        with transaction.atomic():
            revision_ids = set(Version.objects.filter(pk__in=ids).values_list("revision_id", flat=True))
            deleted += Version.objects.filter(pk__in=ids).delete()[1].get("reversion.Version", 0)
            Revision.objects.filter(pk__in=revision_ids, version__isnull=True).delete()
    return deleted


def workflow_definition_at(workflow: Workflow, which: Any = "latest", *, at=None) -> tuple[dict, int | None]:
    """The definition of `workflow` to run and its version number: `which` is a version number
    (1 is the oldest kept version, as the history numbers them), "latest" (the current definition)
    or "pinned" (the version that was current at `at`). Raises LookupError naming what is missing.

    The engine calls this through its `workflow_version` hook for child runs."""
    versions = list(Version.objects.get_for_object(workflow).order_by("pk").values_list("pk", "revision__date_created"))
    if which in (None, "", "latest"):
        return workflow.definition, len(versions) or None
    if which == "pinned":
        if at is None:
            return workflow.definition, len(versions) or None
        numbered = [(n, pk) for n, (pk, created) in enumerate(versions, start=1) if created <= at]
        if not numbered:
            raise LookupError(f"{workflow.slug} had no version yet when this run started")
        number, pk = numbered[-1]
    else:
        try:
            number = int(which)
        except (TypeError, ValueError):
            raise LookupError(f"version must be a number, latest or pinned, not {which!r}") from None
        if not 1 <= number <= len(versions):
            raise LookupError(f"{workflow.slug} has no version {number} (it has {len(versions)})")
        pk = versions[number - 1][0]
    definition = Version.objects.get(pk=pk).field_dict.get("definition")
    if not isinstance(definition, dict):
        raise LookupError(f"version {number} of {workflow.slug} holds no definition")
    return definition, number
