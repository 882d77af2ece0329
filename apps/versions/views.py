"""Version history panel: versions, a coloured diff on the graph and as a field list, restore."""

from __future__ import annotations

import json
from typing import Any

from csp.decorators import csp_exempt
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from apps.sharing.services import access_workflow, has_workflow_perm
from apps.workflows.canvas import canvas_model, diff_canvas, render_readonly

from . import services
from .graphs import definition_svg


def _pair(request: HttpRequest, workflow):
    versions = list(services.versions_of(workflow))
    if len(versions) < 2 and not request.GET.get("from"):
        return versions, None, None
    old = services.get_version(workflow, request.GET["from"]) if request.GET.get("from", "").isdigit() else versions[1]
    new = services.get_version(workflow, request.GET["to"]) if request.GET.get("to", "").isdigit() else versions[0]
    return versions, old, new


def _show(value: Any) -> Any:
    """Values in the field list as JSON (["approve", "reject"], true, null), not Python's repr."""
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _readable(diff: dict[str, Any]) -> dict[str, Any]:
    for change in [
        *diff.get("fields", []),
        *diff.get("definition", []),
        *(f for n in diff.get("nodes", []) for f in n.get("fields", [])),
    ]:
        change["from"], change["to"] = _show(change["from"]), _show(change["to"])
    return diff


@login_required
def history(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = access_workflow(request.user, pk, "view")
    versions, old, new = _pair(request, workflow)
    raw = services.diff_versions(old, new) if old and new else None
    drawing = None
    if raw is not None:
        before, after = services.version_fields(old)["definition"], services.version_fields(new)["definition"]
        drawing = mark_safe(render_readonly(diff_canvas(before, after, raw), title="Changes", canvas_id="diff"))  # noqa: S308 - the template escapes
    diff = _readable(raw) if raw is not None else None
    numbered = [(len(versions) - i, v) for i, v in enumerate(versions)]
    number_of = {v.pk: number for number, v in numbered}
    shown = None
    if request.GET.get("show", "").isdigit():
        version = services.get_version(workflow, request.GET["show"])
        shown = {
            "number": number_of.get(version.pk),
            "drawing": mark_safe(
                render_readonly(
                    canvas_model(services.version_fields(version)["definition"], problems=[]),
                    title=f"Version {number_of.get(version.pk)}",
                    canvas_id="ver",
                )
            ),  # noqa: S308
        }
    return render(
        request,
        "versions/history.html",
        {
            "drawing": drawing,
            "shown": shown,
            "workflow": workflow,
            "versions": numbered,
            "old": old,
            "new": new,
            "diff": diff,
            "old_number": number_of.get(old.pk) if old else None,
            "new_number": number_of.get(new.pk) if new else None,
            "summary": services.summary_counts(diff) if diff else None,
            "can_restore": has_workflow_perm(request.user, workflow, "change"),
        },
    )


@csp_exempt()  # type: ignore[arg-type]  # django-csp types a view as taking the request alone
@login_required
def diff_graph(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = access_workflow(request.user, pk, "view")
    _, old, new = _pair(request, workflow)
    if not (old and new):
        return HttpResponse(definition_svg(workflow.definition), content_type="image/svg+xml")
    before, after = services.version_fields(old)["definition"], services.version_fields(new)["definition"]
    diff = services.diff_definitions(before, after)
    colours = {n["id"]: n["change"] for n in diff["nodes"]}
    return HttpResponse(
        definition_svg(after, diff=colours, removed_from=before, title="Changes"), content_type="image/svg+xml"
    )


@login_required
@require_POST
def restore(request: HttpRequest, pk: int, vid: int) -> HttpResponse:
    workflow = access_workflow(request.user, pk, "change")
    version = services.get_version(workflow, vid)
    services.restore_version(workflow, version, acting_user=request.user)
    messages.success(request, f"Restored version {services.version_number(version)} as a new version.")
    return redirect("versions:history", pk=workflow.pk)
