"""Builder pages: the workflow list, create, the editor (canvas, nodes, edges, JSON view), the
graph and the run dialog. Thin views: they fetch with `access_workflow`, parse forms, call the
services in `services.py` / `editing.py` (every definition change: row lock, revision check, one
version) / the orchestrator, and render. Drafts may be saved with problems (the API allows it too);
the validator's problems are shown next to the field they name, and a run refuses them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts import roles
from apps.accounts.types import AuthenticatedHttpRequest
from apps.common.htmx import base_template, client_redirect, is_htmx_partial
from apps.common.text import search_text
from apps.executions.access import visible_executions
from apps.executions.choices import ExecutionStatus
from apps.executions.engine.orchestrator import InputError, start_execution
from apps.sharing.services import access_workflow, has_workflow_perm, visible_workflows
from apps.workflows.definition.graph import find_node, graph_svg, iter_nodes

from . import editing, services
from .badges import badges_for
from .canvas import canvas_model
from .canvas import render_svg as render_canvas_svg
from .definition.ordering import ordered_definition
from .definition.validator import DefinitionError, Problem, validate
from .forms import (
    AddNodeForm,
    DefinitionJSONForm,
    DefinitionSettingsForm,
    EdgeForm,
    RunForm,
    WorkflowForm,
    node_form_for,
)
from .models import Workflow

PAGE_SIZE = 20


#
# List and create
#


def _filtered_workflows(request: HttpRequest) -> tuple[QuerySet[Workflow], str, str]:
    q = search_text(request.GET.get("q", ""))[:200]
    tag = request.GET.get("tag", "").strip()[:50]
    qs = visible_workflows(request.user).select_related("owner").order_by("-updated_at", "pk")
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(description__icontains=q) | Q(slug__icontains=q))
    if tag:
        qs = qs.filter(tags__contains=[tag])
    return qs, q, tag


@require_GET
@login_required
def workflow_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Workflows the user may see, searchable by text and filterable by tag, 20 a page."""
    qs, q, tag = _filtered_workflows(request)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    all_tags = sorted(
        {
            t
            for tags in visible_workflows(request.user).values_list("tags", flat=True)
            for t in (tags or [])
            if isinstance(t, str)
        }
    )
    page_ids = [w.pk for w in page.object_list]
    editable = set(visible_workflows(request.user, "change").filter(pk__in=page_ids).values_list("pk", flat=True))
    badges = badges_for(page.object_list, request.user)
    for workflow in page.object_list:  # the page's evaluated rows: the template reads the same objects
        workflow.badges = badges.get(workflow.pk, [])  # type: ignore[attr-defined]  # for the template only
    context = {"page": page, "q": q, "tag": tag, "all_tags": all_tags, "editable": editable}
    if is_htmx_partial(request) and request.htmx.target == "workflow-results":
        return render(request, "workflows/partials/workflow_results.html", context)
    can_create = roles.has_capability(request.user, roles.CREATE_WORKFLOWS)
    return render(
        request, "workflows/list.html", {**context, "can_create": can_create, "base_template": base_template(request)}
    )


@require_http_methods(["GET", "POST"])
@login_required
def workflow_create(request: HttpRequest) -> HttpResponse:
    roles.require_capability(request.user, roles.CREATE_WORKFLOWS)
    form = WorkflowForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        workflow = services.create_workflow(
            owner=request.user,
            acting_user=request.user,
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            tags=form.cleaned_data["tags"],
        )
        messages.success(request, f"Created “{workflow.name}”. Add its first node.")
        return client_redirect(request, reverse("workflows:edit", args=[workflow.pk]))
    return render(
        request,
        "workflows/create.html",
        {"form": form, "base_template": base_template(request)},
        status=422 if form.errors else 200,
    )


#
# Detail
#


@require_GET
@login_required
def workflow_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The workflow: its graph, recent runs, past failures and the run button."""
    workflow = access_workflow(request.user, pk)
    runs = visible_executions(request.user).filter(workflow=workflow).order_by("-created_at")
    failures = runs.filter(status=ExecutionStatus.FAILED)[:10]
    problems = validate(workflow.definition)
    return render(
        request,
        "workflows/detail.html",
        {
            "workflow": workflow,
            "graph": graph_svg(workflow.definition, title=f"Graph of {workflow.name}"),
            "recent": runs[:10],
            "failures": failures,
            "problems": problems,
            "badges": badges_for([workflow], request.user).get(workflow.pk, []),
            "can_change": has_workflow_perm(request.user, workflow, "change"),
            "can_run": has_workflow_perm(request.user, workflow, "change")
            and roles.has_capability(request.user, roles.RUN_WORKFLOWS),
            "can_share": has_workflow_perm(request.user, workflow, "admin"),
            "base_template": base_template(request),
        },
    )


@require_GET
@login_required
def workflow_graph(request: HttpRequest, pk: int) -> HttpResponse:
    """The graph as a standalone SVG image."""
    workflow = access_workflow(request.user, pk)
    svg = graph_svg(workflow.definition, title=f"Graph of {workflow.name}")
    return HttpResponse(svg, content_type="image/svg+xml")


@require_GET
@login_required
def error_help(request: HttpRequest) -> HttpResponse:
    """What the error overlay's suggestions link to (mirrored in docs/ui.md)."""
    return render(request, "workflows/help.html", {"base_template": base_template(request)})


#
# Definition editing helpers
#


def _graphs(definition: dict) -> list[tuple[str, str, dict]]:
    """Every graph of a definition: (key, label, graph)."""
    return list(editing.iter_graphs(definition))


def _problems_by_node(problems: list[Problem]) -> dict[str, list[Problem]]:
    out: dict[str, list[Problem]] = {}
    for problem in problems:
        out.setdefault(problem.node or "", []).append(problem)
    return out


def _expected_revision(request: HttpRequest) -> str | None:
    """The revision the editing page was rendered from (forms carry it; an old client may not)."""
    return request.POST.get("revision") or None


def _edit(request: HttpRequest, workflow: Workflow, change) -> Workflow:
    """Run `change` through the editing service, locked and revision-checked."""
    return editing.edit_definition(
        workflow, change, acting_user=request.user, expected_revision=_expected_revision(request)
    )


def _conflict(request: HttpRequest, workflow: Workflow, exc: editing.EditConflict) -> HttpResponse:
    messages.error(request, str(exc))
    return client_redirect(request, reverse("workflows:edit", args=[workflow.pk]))


def _node_rows(definition: dict, problems_by_node: dict[str, list[Problem]]) -> list[dict]:
    rows = []
    for node, parent, where in iter_nodes(definition.get("nodes", [])):
        rows.append(
            {
                "node": node,
                "id": node.get("id", ""),
                "type": node.get("type", ""),
                "detail": node.get("activity", "") if node.get("type") == "activity" else node.get("mode", ""),
                "where": where,
                "nested": parent is not None,
                "problems": problems_by_node.get(str(node.get("id", "")), []),
            }
        )
    return rows


def _edge_rows(definition: dict) -> list[dict]:
    rows = []
    for key, label, graph in _graphs(definition):
        for index, edge in enumerate(graph.get("edges", []) or []):
            if isinstance(edge, dict):
                rows.append({"graph": key, "graph_label": label, "index": index, "edge": edge})
    return rows


def _editor_context(request: HttpRequest, workflow: Workflow, **extra: Any) -> dict:
    definition = workflow.definition if isinstance(workflow.definition, dict) else {}
    problems = validate(definition)
    by_node = _problems_by_node(problems)
    node_ids = [str(n.get("id")) for n, _p, _w in iter_nodes(definition.get("nodes", [])) if n.get("id")]
    context = {
        "workflow": workflow,
        "revision": editing.revision_of(workflow),
        "definition": definition,
        "problems": problems,
        "general_problems": by_node.get("", []),
        "node_rows": _node_rows(definition, by_node),
        "edge_rows": _edge_rows(definition),
        "add_form": AddNodeForm(definition=definition),
        "edge_form": EdgeForm(graphs=[(k, label) for k, label, _g in _graphs(definition)], node_ids=node_ids),
        "settings_form": DefinitionSettingsForm(initial={f: definition.get(f) for f in DefinitionSettingsForm.FIELDS}),
        "workflow_form": WorkflowForm(
            initial={"name": workflow.name, "description": workflow.description, "tags": ", ".join(workflow.tags or [])}
        ),
        **canvas_context(workflow, editable=True, problems=problems),
        "can_run": roles.has_capability(request.user, roles.RUN_WORKFLOWS),
        "base_template": base_template(request),
    }
    context.update(extra)
    return context


#
# Editor
#


@require_GET
@login_required
def workflow_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The editor: settings, the node list, edges, the graph; every problem listed by node."""
    workflow = access_workflow(request.user, pk, "change")
    return render(request, "workflows/edit.html", _editor_context(request, workflow))


def _editor_rerender(request: HttpRequest, workflow: Workflow, status: int = 422, **forms: Any) -> HttpResponse:
    return render(request, "workflows/edit.html", _editor_context(request, workflow, **forms), status=status)


@require_POST
@login_required
def workflow_settings(request: HttpRequest, pk: int) -> HttpResponse:
    """Save name/description/tags and the definition's input schema, variables and output."""
    workflow = access_workflow(request.user, pk, "change")
    workflow_form = WorkflowForm(request.POST)
    settings_form = DefinitionSettingsForm(request.POST)
    if not (workflow_form.is_valid() and settings_form.is_valid()):
        return _editor_rerender(request, workflow, workflow_form=workflow_form, settings_form=settings_form)
    definition = copy.deepcopy(workflow.definition)
    for field in DefinitionSettingsForm.FIELDS:
        value = settings_form.cleaned_data.get(field)
        if value in (None, {}, ""):
            definition.pop(field, None)
        else:
            definition[field] = value
    # Problems in these fields are the settings form's to show.
    problems = [
        p
        for p in validate(definition)
        if not p.node and p.field and p.field.split(".")[0].split("[")[0] in DefinitionSettingsForm.FIELDS
    ]
    if problems:
        for problem in problems:
            settings_form.add_error((problem.field or "").split(".")[0].split("[")[0], problem.message)
        return _editor_rerender(request, workflow, workflow_form=workflow_form, settings_form=settings_form)

    def change(stored: dict) -> str:
        for field in DefinitionSettingsForm.FIELDS:
            if field in definition:
                stored[field] = definition[field]
            else:
                stored.pop(field, None)
        return "Edited settings"

    try:
        editing.edit_definition(
            workflow,
            change,
            acting_user=request.user,
            expected_revision=_expected_revision(request),
            fields={k: workflow_form.cleaned_data[k] for k in ("name", "description", "tags")},
        )
    except editing.EditConflict as exc:
        workflow_form.add_error(None, f"{exc} Saving again replaces their version with yours.")
        workflow.refresh_from_db()  # the page shows theirs, and carries the revision that lets you replace it
        return _editor_rerender(request, workflow, status=409, workflow_form=workflow_form, settings_form=settings_form)
    messages.success(request, "Settings saved.")
    return client_redirect(request, reverse("workflows:edit", args=[workflow.pk]))


@require_POST
@login_required
def node_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a node to a graph, connected after the graph's last node unless told otherwise."""
    workflow = access_workflow(request.user, pk, "change")
    form = AddNodeForm(request.POST, definition=copy.deepcopy(workflow.definition))
    if not form.is_valid():
        return _editor_rerender(request, workflow, add_form=form)
    data = form.cleaned_data

    def change(definition: dict) -> str:
        graph = editing.graph_by_key(copy.deepcopy(definition), data.get("graph") or "")
        after = data.get("after") or ""
        if after == "" and graph is not None:
            nodes = [n for n in graph.get("nodes", []) or [] if isinstance(n, dict)]
            after = str(nodes[-1].get("id")) if nodes else ""
        elif after == "-":
            after = ""
        comment, _node = editing.add_node(
            definition,
            node_type=data["type"],
            node_id=data["id"],
            activity=data.get("activity") or "",
            graph=data.get("graph") or "",
            after=after or None,
        )
        return comment

    try:
        _edit(request, workflow, change)
    except editing.EditConflict as exc:
        return _conflict(request, workflow, exc)
    except editing.EditError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _editor_rerender(request, workflow, add_form=form)
    messages.success(request, f"Added node “{data['id']}”. Fill in its fields.")
    return client_redirect(request, reverse("workflows:node", args=[workflow.pk, data["id"]]))


@require_http_methods(["GET", "POST"])
@login_required
def node_edit(request: HttpRequest, pk: int, node_id: str) -> HttpResponse:
    """One node's form. Saving refuses problems in this node's own fields (shown next to them)."""
    workflow = access_workflow(request.user, pk, "change")
    definition = copy.deepcopy(workflow.definition)
    node = find_node(definition, node_id)
    if node is None:
        raise Http404("No such node.")
    graph = editing.graph_of(definition, node_id) or definition
    siblings = [str(n.get("id")) for n in graph.get("nodes", []) if isinstance(n, dict)]
    form = node_form_for(node, siblings, request.POST if request.method == "POST" else None)
    status = 200
    revision, conflict = editing.revision_of(workflow), False
    if request.method == "POST" and form.is_valid():
        new_node = form.to_node()
        if form.is_valid():  # to_node may add errors (numbers, JSON)
            if isinstance(node.get("ui"), dict) and "ui" not in new_node:
                new_node["ui"] = node["ui"]  # the canvas's placement is not a form field
            problems: list[Problem] = []

            def change(definition: dict) -> str:
                graph = editing.graph_of(definition, node_id)
                if graph is None:
                    raise editing.EditError("This node was removed meanwhile.", None)
                if new_node["id"] != node_id and new_node["id"] in editing.all_node_ids(definition):
                    raise editing.EditError(f"a node with id '{new_node['id']}' already exists", "id")
                index = next(i for i, n in enumerate(graph["nodes"]) if isinstance(n, dict) and n.get("id") == node_id)
                graph["nodes"][index] = new_node
                if new_node["id"] != node_id:
                    editing.rename_references(graph, node_id, new_node["id"])
                own = [p for p in validate(definition) if p.node == new_node["id"] and form.field_for(p.field)]
                if own:
                    problems.extend(own)
                    raise editing.EditError("problems in this node's fields")
                return f"Edited node {new_node['id']}"

            try:
                _edit(request, workflow, change)
            except editing.EditConflict as exc:
                form.add_error(None, f"{exc} Saving again replaces their version with yours.")
                revision, conflict = exc.current_revision, True
            except editing.EditError as exc:
                if problems:
                    for problem in problems:
                        form.add_error(form.field_for(problem.field), problem.message)
                else:
                    form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, f"Saved node “{new_node['id']}”.")
                return client_redirect(
                    request, reverse("workflows:edit", args=[workflow.pk]) + f"#node-{new_node['id']}"
                )
        status = 409 if conflict else 422
    elif request.method == "POST":
        status = 422
    else:
        # Show the stored draft's problems for this node next to their fields straight away.
        problems = [p for p in validate(definition) if p.node == node_id and form.field_for(p.field)]
        if problems:
            form = _bound_copy(form)
            form.is_valid()
            for problem in problems:
                form.add_error(form.field_for(problem.field), problem.message)
    other = [p for p in validate(workflow.definition) if p.node == node_id and not form.field_for(p.field)]
    return render(
        request,
        "workflows/node_form.html",
        {
            "workflow": workflow,
            "node": node,
            "form": form,
            "other_problems": other,
            "revision": revision,
            "base_template": base_template(request),
        },
        status=status,
    )


def _bound_copy(form: Any) -> Any:
    """The same form bound to its initial values, so errors can be attached to its fields."""
    data: dict[str, Any] = {}
    for bound in form:
        value = bound.value()
        if value is None:
            continue
        data[bound.html_name] = bound.field.prepare_value(value) if hasattr(bound.field, "expect") else value
    return type(form)(data, node=form.node, siblings=form.siblings)


@require_POST
@login_required
def node_delete(request: HttpRequest, pk: int, node_id: str) -> HttpResponse:
    workflow = access_workflow(request.user, pk, "change")
    try:
        _edit(request, workflow, lambda definition: editing.delete_node(definition, node_id))
    except editing.EditConflict as exc:
        return _conflict(request, workflow, exc)
    except editing.EditError:
        pass  # already gone
    else:
        messages.success(request, f"Removed node “{node_id}” and its edges.")
    return client_redirect(request, reverse("workflows:edit", args=[workflow.pk]))


@require_POST
@login_required
def edge_add(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = access_workflow(request.user, pk, "change")
    definition = copy.deepcopy(workflow.definition)
    form = EdgeForm(
        request.POST,
        graphs=[(k, label) for k, label, _g in _graphs(definition)],
        node_ids=editing.all_node_ids(definition),
    )
    if form.is_valid():
        source, target = form.cleaned_data["source"], form.cleaned_data["target"]
        source_node = find_node(definition, source) or {}

        def change(definition: dict) -> str:
            if source_node.get("type") == "condition":
                raise editing.EditError(
                    "a condition's outgoing edges are its cases and default: edit the condition node", "source"
                )
            return editing.connect(definition, source, target, form.cleaned_data.get("label") or None)

        try:
            _edit(request, workflow, change)
        except editing.EditConflict as exc:
            return _conflict(request, workflow, exc)
        except editing.EditError as exc:
            form.add_error(exc.field if exc.field in form.fields else "target", exc.message)
        else:
            messages.success(request, f"Connected {source} → {target}.")
            return client_redirect(request, reverse("workflows:edit", args=[workflow.pk]) + "#edges")
    return _editor_rerender(request, workflow, edge_form=form)


@require_POST
@login_required
def edge_delete(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = access_workflow(request.user, pk, "change")
    try:
        index = int(request.POST.get("index", ""))
    except ValueError:
        index = -1
    try:
        comment = ""

        def change(definition: dict) -> str:
            nonlocal comment
            comment = editing.remove_edge_at(definition, request.POST.get("graph", ""), index)
            return comment

        _edit(request, workflow, change)
    except editing.EditConflict as exc:
        return _conflict(request, workflow, exc)
    except editing.EditError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, comment.replace(" -> ", " → ") + ".")
    return client_redirect(request, reverse("workflows:edit", args=[workflow.pk]) + "#edges")


#
# Canvas
#


def canvas_context(workflow: Workflow, *, editable: bool, problems: list[Problem] | None = None) -> dict:
    """What templates/workflows/partials/canvas.html draws for `workflow` (`problems`: the
    validator's, when the caller has them already)."""
    definition = workflow.definition if isinstance(workflow.definition, dict) else {}
    revision = editing.revision_of(workflow)
    model = canvas_model(definition, problems=problems)
    svg = render_canvas_svg(
        model, canvas_id=f"cv{workflow.pk}", title=f"Canvas of {workflow.name}", editable=editable, revision=revision
    )
    return {
        "canvas_svg": mark_safe(svg),  # noqa: S308 - render_svg escapes every piece of text
        "canvas_data_id": "canvas-data",
        "canvas_data": {"revision": revision, "definition": definition},
        "revision": revision,
        "editable": editable,
    }


@require_http_methods(["GET", "POST"])
@login_required
def workflow_canvas(request: HttpRequest, pk: int) -> HttpResponse:
    """The canvas fragment (GET, view permission); POST applies `{"revision", "ops": [...]}` through
    the editing service (change permission) and answers the new fragment, 409 with a message when
    the workflow changed since `revision`, 400 naming what cannot be done."""
    if request.method == "GET":
        workflow = access_workflow(request.user, pk)
        editable = has_workflow_perm(request.user, workflow, "change")
        return render(request, "workflows/partials/canvas.html", canvas_context(workflow, editable=editable))
    workflow = access_workflow(request.user, pk, "change")
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"detail": "The body must be JSON."}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"detail": "The body must be a JSON object."}, status=400)
    try:
        workflow = editing.apply_operations(
            workflow,
            body.get("ops"),
            acting_user=request.user,
            expected_revision=str(body.get("revision") or "") or None,
        )
    except editing.EditConflict as exc:
        return JsonResponse({"detail": str(exc), "code": "conflict", "revision": exc.current_revision}, status=409)
    except editing.EditError as exc:
        return JsonResponse({"detail": exc.message, "field": exc.field, "code": "invalid_edit"}, status=400)
    return render(request, "workflows/partials/canvas.html", canvas_context(workflow, editable=True))


@require_http_methods(["GET", "POST"])
@login_required
def definition_json(request: HttpRequest, pk: int) -> HttpResponse:
    """The whole definition as JSON: view it (view permission) and save it (change permission)."""
    workflow = access_workflow(request.user, pk, "change" if request.method == "POST" else "view")
    can_change = has_workflow_perm(request.user, workflow, "change")
    text = json.dumps(ordered_definition(workflow.definition), indent=2)
    form = DefinitionJSONForm(request.POST or None, initial={"definition": text})
    status = 200
    if request.method == "POST":
        for message in (
            services.check_definition_permitted(request.user, form.cleaned_data["definition"], workflow.definition)
            if form.is_valid()
            else []
        ):
            form.add_error("definition", message)
        if form.is_valid():
            new_definition = form.cleaned_data["definition"]

            def change(definition: dict) -> str:
                editing.replace_definition(definition, new_definition)
                return "Edited as JSON"

            try:
                _edit(request, workflow, change)
            except editing.EditConflict as exc:
                return _conflict(request, workflow, exc)
            problems = validate(new_definition)
            if problems:
                # Saved anyway (drafts are allowed), but not in green: runs, schedules and triggers refuse it now.
                messages.warning(
                    request,
                    f"Saved as a draft with {len(problems)} problem{'s' if len(problems) != 1 else ''}: it will "
                    "not run until they are fixed (listed below). Version history can bring back the previous "
                    "definition.",
                )
            else:
                messages.success(request, "Definition saved.")
            return client_redirect(request, reverse("workflows:json", args=[workflow.pk]))
        status = 422
    return render(
        request,
        "workflows/json.html",
        {
            "workflow": workflow,
            "form": form,
            "problems": validate(workflow.definition),
            "can_change": can_change,
            "revision": editing.revision_of(workflow),
            "base_template": base_template(request),
        },
        status=status,
    )


#
# Run
#


@require_http_methods(["GET", "POST"])
@login_required
def workflow_run(request: HttpRequest, pk: int) -> HttpResponse:
    """The run dialog: a form built from the input schema; starting redirects to the live page."""
    workflow = access_workflow(request.user, pk, "change")
    roles.require_capability(request.user, roles.RUN_WORKFLOWS)
    definition = workflow.definition if isinstance(workflow.definition, dict) else {}
    # Bound on every POST, even an empty one (an API-style client sends no fields): an unbound form
    # cannot carry the "inactive" error.
    form = RunForm(request.POST if request.method == "POST" else None, input_schema=definition.get("input_schema"))
    problems: list[Problem] = []
    status = 200
    if request.method == "POST":
        status = 422
        if not workflow.is_active:
            form.add_error(None, "This workflow is inactive: it starts no runs.")
        elif form.is_valid():
            try:
                execution = start_execution(workflow, form.input_data(), acting_user=request.user, trigger="manual")
            except DefinitionError as exc:
                problems = exc.problems
                form.add_error(None, "The workflow has problems; fix them in the editor before running it.")
            except InputError as exc:
                form.add_error(form.field_for(exc.field), f"{exc.field}: {exc.message}")
            else:
                return client_redirect(request, reverse("executions:detail", args=[execution.pk]))
    return render(
        request,
        "workflows/run.html",
        {"workflow": workflow, "form": form, "problems": problems, "base_template": base_template(request)},
        status=status,
    )
