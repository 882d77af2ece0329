"""Export workflows as a JSON document, and import such documents (all or nothing).

import_document validates the whole document first (JSON Schema, then each definition
with the validator, then child-workflow references) and writes nothing when any
problem is found. A dry run returns the same plan without writing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from jsonschema import Draft202012Validator

from apps.accounts import roles
from apps.accounts.services import record_audit
from apps.executions.engine.redaction import redact
from apps.sharing.services import visible_workflows
from apps.workflows import services as workflow_services
from apps.workflows.definition.ordering import ordered_definition
from apps.workflows.definition.validator import validate
from apps.workflows.models import Workflow

from .schema import EXPORT_SCHEMA, FORMAT, FORMAT_VERSION

OnConflict = Literal["rename", "skip"]
HISTORY_LIMIT = 100  # runs per workflow in an export


#
# Export
#


def _execution_record(execution) -> dict[str, Any]:
    return redact(
        {
            "id": execution.pk,
            "status": execution.status,
            "trigger": execution.trigger,
            "input": execution.input,
            "output": execution.output,
            "error": execution.error,
            "created_at": execution.created_at.isoformat(),
            "started_at": execution.started_at.isoformat() if execution.started_at else None,
            "finished_at": execution.finished_at.isoformat() if execution.finished_at else None,
            "steps": [
                {
                    "node_id": s.node_id,
                    "scope": s.scope,
                    "attempt": s.attempt,
                    "status": s.status,
                    "input": s.input,
                    "output": s.output,
                    "error": s.error,
                }
                for s in execution.steps.all()
            ],
        }
    )


def export_workflows(
    workflows: Iterable[Workflow], *, include_history: bool = False, exported_by: str = ""
) -> dict[str, Any]:
    """The export document for `workflows` (the caller checked view permission on each)."""
    items = []
    for workflow in workflows:
        item: dict[str, Any] = {
            "name": workflow.name,
            "slug": workflow.slug,
            "description": workflow.description,
            "tags": list(workflow.tags),
            "definition": ordered_definition(copy.deepcopy(workflow.definition)),
            "is_active": workflow.is_active,
            "triggers": [],
        }
        if include_history:
            runs = (
                workflow.executions.filter(parent__isnull=True)
                .prefetch_related("steps")
                .order_by("-created_at")[:HISTORY_LIMIT]
            )
            item["executions"] = [_execution_record(run) for run in runs]
        items.append(item)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "workflows": items,
    }
    if exported_by:
        document["exported_by"] = exported_by
    return document


#
# Import
#


@dataclass
class ImportProblem:
    message: str
    index: int | None = None
    slug: str | None = None
    field: str | None = None
    node: str | None = None
    code: str = "invalid"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}

    def __str__(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"workflows[{self.index}]" + (f" ({self.slug})" if self.slug else ""))
        if self.node:
            where.append(f"node '{self.node}'")
        if self.field:
            where.append(f"field '{self.field}'")
        return (", ".join(where) + ": " if where else "") + self.message


@dataclass
class PlannedWorkflow:
    index: int
    action: str  # create, rename, skip
    slug: str
    name: str
    original_slug: str
    original_name: str
    reason: str = ""
    workflow_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ImportResult:
    ok: bool
    dry_run: bool
    problems: list[ImportProblem] = field(default_factory=list)
    plan: list[PlannedWorkflow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        out = {"create": 0, "rename": 0, "skip": 0}
        for item in self.plan:
            out[item.action] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "created": 0 if self.dry_run or not self.ok else self.counts["create"] + self.counts["rename"],
            "counts": self.counts,
            "workflows": [p.as_dict() for p in self.plan],
            "problems": [p.as_dict() for p in self.problems],
            "notes": self.notes,
        }


def _path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check_document(document: Any) -> list[ImportProblem]:
    """Schema problems of the document, each naming the workflow index/slug and field."""
    problems: list[ImportProblem] = []
    if not isinstance(document, dict):
        return [ImportProblem("the document must be a JSON object", field="document", code="schema")]
    validator = Draft202012Validator(EXPORT_SCHEMA)
    workflows = given if isinstance(given := document.get("workflows"), list) else []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))):
        parts = list(error.absolute_path)
        index = slug = None
        if len(parts) >= 2 and parts[0] == "workflows" and isinstance(parts[1], int):
            index = parts[1]
            item = workflows[index] if index < len(workflows) else None
            slug = item.get("slug") if isinstance(item, dict) and isinstance(item.get("slug"), str) else None
            parts = parts[2:]
        message = error.message
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            parts = [*parts, missing]
            message = "this field is required"
        problems.append(ImportProblem(message, index=index, slug=slug, field=_path(parts) or None, code="schema"))
    return problems


def _child_references(definition: dict) -> list[tuple[str, str]]:
    """(node id, slug) of every child_workflow node, nested bodies included."""
    refs: list[tuple[str, str]] = []

    def visit(graph: Any) -> None:
        if not isinstance(graph, dict):
            return
        for node in graph.get("nodes") or []:
            if not isinstance(node, dict):
                continue
            if node.get("type") == "child_workflow" and isinstance(node.get("workflow"), str):
                refs.append((str(node.get("id")), node["workflow"]))
            visit(node.get("body"))
            for branch in node.get("branches") or []:
                visit(branch)

    visit(definition)
    return refs


def _rewrite_children(definition: Any, renames: dict[str, str]) -> Any:
    if isinstance(definition, dict):
        out = {k: _rewrite_children(v, renames) for k, v in definition.items()}
        if out.get("type") == "child_workflow" and out.get("workflow") in renames:
            out["workflow"] = renames[out["workflow"]]
        return out
    if isinstance(definition, list):
        return [_rewrite_children(v, renames) for v in definition]
    return definition


def plan_import(document: Any, *, user: User, on_conflict: OnConflict = "rename") -> ImportResult:
    """Check everything and decide what would happen to each workflow (writes nothing)."""
    result = ImportResult(ok=False, dry_run=True)
    if on_conflict not in ("rename", "skip"):
        result.problems.append(ImportProblem("must be rename or skip", field="on_conflict"))
        return result
    result.problems = check_document(document)
    if result.problems:
        return result
    items = document["workflows"]
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item["slug"] in seen:
            result.problems.append(
                ImportProblem(
                    f"slug already used by workflows[{seen[item['slug']]}]",
                    index=i,
                    slug=item["slug"],
                    field="slug",
                    code="duplicate",
                )
            )
        seen.setdefault(item["slug"], i)
        for problem in validate(item["definition"]):
            field_name = "definition" + (f".{problem.field}" if problem.field else "")
            result.problems.append(
                ImportProblem(
                    problem.message, index=i, slug=item["slug"], field=field_name, node=problem.node, code=problem.code
                )
            )
    existing = set(Workflow.objects.filter(slug__in=list(seen)).values_list("slug", flat=True))
    taken = set(existing)
    for i, item in enumerate(items):
        slug, name = item["slug"], item["name"]
        if slug not in existing:
            result.plan.append(PlannedWorkflow(i, "create", slug, name, slug, name))
            continue
        if on_conflict == "skip":
            result.plan.append(
                PlannedWorkflow(i, "skip", slug, name, slug, name, reason="a workflow with this slug exists")
            )
            continue
        new_slug, n = f"{slug}-imported", 2
        while new_slug in taken or Workflow.objects.filter(slug=new_slug).exists():
            new_slug, n = f"{slug}-imported-{n}", n + 1
        taken.add(new_slug)
        result.plan.append(
            PlannedWorkflow(i, "rename", new_slug, f"{name} (imported)", slug, name, reason=f"slug {slug!r} is taken")
        )
    # Child references: to a workflow of this document, or to one that exists (and the user can see).

    refs = {i: _child_references(item["definition"]) for i, item in enumerate(items)}
    wanted = {slug for pairs in refs.values() for _, slug in pairs} - set(seen)
    found = set(visible_workflows(user).filter(slug__in=wanted).values_list("slug", flat=True)) if wanted else set()
    for i, pairs in refs.items():
        for node_id, slug in pairs:
            if slug not in seen and slug not in found:
                result.problems.append(
                    ImportProblem(
                        f"child workflow {slug!r} is neither in this document nor a workflow you can see",
                        index=i,
                        slug=items[i]["slug"],
                        field="definition.nodes.workflow",
                        node=node_id,
                        code="missing_child_workflow",
                    )
                )
    history = sum(len(item.get("executions") or []) for item in items)
    if history:
        result.notes.append(
            f"{history} past execution(s) in the document are kept for the record only; runs are not recreated."
        )
    triggers = sum(len(item.get("triggers") or []) for item in items)
    if triggers:
        result.notes.append(f"{triggers} trigger(s) are not imported; set them up again on the new workflows.")
    result.ok = not result.problems
    return result


def import_document(
    document: Any,
    *,
    user: User,
    on_conflict: OnConflict = "rename",
    dry_run: bool = False,
    progress: Callable[[int, int, PlannedWorkflow], None] | None = None,
    request=None,
) -> ImportResult:
    """Plan, then (unless dry_run or refused) create the workflows owned by `user` in one
    transaction: either every planned workflow is created or none is."""
    result = plan_import(document, user=user, on_conflict=on_conflict)
    result.dry_run = dry_run
    if dry_run or not result.ok:
        return result
    roles.require_capability(user, roles.CREATE_WORKFLOWS)
    items = document["workflows"]
    renames = {p.original_slug: p.slug for p in result.plan if p.action == "rename"}
    todo = [p for p in result.plan if p.action != "skip"]
    with transaction.atomic():
        for n, planned in enumerate(todo, 1):
            item = items[planned.index]
            workflow = workflow_services.create_workflow(
                owner=user,
                acting_user=user,
                name=planned.name,
                slug=planned.slug,
                description=item.get("description", ""),
                tags=list(item.get("tags") or []),
                definition=_rewrite_children(item["definition"], renames),
                is_active=item.get("is_active", True),
                comment="Created by import"
                + (f" (renamed from {planned.original_slug})" if planned.action == "rename" else ""),
            )
            planned.workflow_id = workflow.pk
            if progress:
                progress(n, len(todo), planned)
        record_audit(
            "workflows_imported",
            actor=user,
            request=request,
            target=f"{len(todo)} workflow(s)",
            detail={"workflows": [p.workflow_id for p in todo], "on_conflict": on_conflict},
        )
    return result


def record_export(
    workflows: Iterable[Workflow], *, user: User, request=None, include_history: bool = False, via: str = "api"
) -> None:
    """Audit an export (who took which definitions out)."""
    ids = [w.pk for w in workflows]
    record_audit(
        "workflows_exported",
        actor=user,
        request=request,
        target=f"{len(ids)} workflow(s)",
        detail={"workflows": ids, "include_history": include_history, "via": via},
    )
