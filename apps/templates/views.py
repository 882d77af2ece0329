"""Templates library pages: library (grid/list, category filter, search, sort), detail with
reviews, use, save as, and version history (diff, restore)."""

from __future__ import annotations

import json
from typing import Any

from csp.decorators import csp_exempt
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from apps.accounts.types import AuthenticatedHttpRequest
from apps.common.text import search_text
from apps.sharing.services import access_workflow, has_workflow_perm
from apps.sharing.shares import has_level
from apps.sharing.views import share_dialog
from apps.versions.graphs import definition_svg
from apps.versions.services import diff_definitions, summary_counts
from apps.workflows.canvas import canvas_model, render_readonly

from . import services
from .models import Category

# The library's sort orders: value -> (label, ordering).
SORTS: dict[str, tuple[str, list[Any]]] = {
    "name": ("Name", ["name"]),
    "rating": ("Best rated", [F("rating").desc(nulls_last=True), "-review_count", "name"]),
    "used": ("Most used", ["-usage_count", "name"]),
    "newest": ("Newest", ["-created_at", "name"]),
}


@login_required
def library(request: AuthenticatedHttpRequest) -> HttpResponse:
    qs = services.visible_templates(request.user).select_related("owner").with_stats()
    category = request.GET.get("category", "")
    query = search_text(request.GET.get("q", ""))
    if category in Category.values:
        qs = qs.filter(category=category)
    if query:
        qs = qs.filter(Q(name__icontains=query) | Q(description__icontains=query) | Q(tags__icontains=query))
    view = "list" if request.GET.get("view") == "list" else "grid"
    sort = request.GET.get("sort", "name") if request.GET.get("sort") in SORTS else "name"
    template = "workflow_templates/partials/results.html" if request.htmx else "workflow_templates/library.html"
    return render(
        request,
        template,
        {
            "templates": qs.order_by(*SORTS[sort][1]),
            "categories": Category.choices,
            "category": category,
            "q": query,
            "view": view,
            "sorts": [(value, label) for value, (label, _) in SORTS.items()],
            "sort": sort,
        },
    )


@login_required
def detail(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    template = services.access_template(request.user, pk)
    template = services.visible_templates(request.user).with_stats().get(pk=template.pk)
    return _detail(request, template)


def _detail(
    request: AuthenticatedHttpRequest,
    template,
    *,
    form: dict | None = None,
    errors: dict | None = None,
    status: int = 200,
) -> HttpResponse:
    reviews = list(template.reviews.select_related("user"))
    mine = next((r for r in reviews if r.user_id == request.user.pk), None)
    can_review = services.has_used(template, request.user)
    if form is None:
        form = {"rating": mine.rating if mine else "", "text": mine.text if mine else ""}
    return render(
        request,
        "workflow_templates/detail.html",
        {
            "template": template,
            "stats": template.stats(),
            "can_share": has_level(request.user, template, "admin"),
            "reviews": reviews,
            "my_review": mine,
            "can_review": can_review,
            "form": form,
            "errors": errors or {},
            "drawing": mark_safe(
                render_readonly(
                    canvas_model(template.definition, problems=[]), title=f"Preview of {template.name}", canvas_id="tpl"
                )
            ),  # noqa: S308 - the template escapes
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def share(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The share dialog (apps.sharing) for a template."""
    template = services.access_template(request.user, pk)
    return share_dialog(request, template, "template", template.get_absolute_url())


@login_required
@require_POST
def review(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Rate (1-5) and review a template you made a workflow from; posting again replaces it."""
    template = services.access_template(request.user, pk)
    if request.POST.get("delete"):
        if services.delete_review(template, user=request.user):
            messages.success(request, "Your review was removed.")
        return redirect("workflow_templates:detail", pk=template.pk)
    raw = request.POST.get("rating", "").strip()
    text = request.POST.get("text", "")
    try:
        services.review_template(template, user=request.user, rating=int(raw) if raw.isdigit() else raw, text=text)
    except ValidationError as exc:
        template = services.visible_templates(request.user).with_stats().get(pk=template.pk)
        errors = {field: " ".join(msgs) for field, msgs in exc.message_dict.items()}
        return _detail(request, template, form={"rating": raw, "text": text}, errors=errors, status=422)
    messages.success(request, "Thanks, your review is saved.")
    return redirect("workflow_templates:detail", pk=template.pk)


@csp_exempt()  # type: ignore[arg-type]  # django-csp types a view as taking the request alone
@login_required
def graph(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    template = services.access_template(request.user, pk)
    return HttpResponse(definition_svg(template.definition, title=template.name), content_type="image/svg+xml")


@login_required
@require_POST
def use(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    template = services.access_template(request.user, pk)
    name = request.POST.get("name", "").strip()[:200] or None
    workflow = services.instantiate_template(template, user=request.user, name=name)
    messages.success(request, f"Created “{workflow.name}” from the template.")
    try:
        return redirect(workflow.get_absolute_url())
    except Exception:  # the workflow pages may not be there yet
        return redirect("workflow_templates:detail", pk=template.pk)


@login_required
@require_http_methods(["GET", "POST"])
def save_as(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    workflow = access_workflow(request.user, pk, "view")
    can_publish = has_workflow_perm(request.user, workflow, "admin")
    errors: dict[str, str] = {}
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        category = request.POST.get("category", Category.CUSTOM)
        if not name:
            errors["name"] = "Give the template a name."
        if category not in Category.values:
            errors["category"] = "Choose a category."
        is_public = request.POST.get("is_public") == "on"
        if is_public and not can_publish:
            errors["is_public"] = "Publishing needs the admin permission on this workflow."
        if not errors:
            template = services.save_workflow_as_template(
                workflow,
                user=request.user,
                name=name,
                category=category,
                description=request.POST.get("description", workflow.description),
                is_public=is_public,
            )
            messages.success(request, "Saved as a template.")
            return redirect("workflow_templates:detail", pk=template.pk)
    context = {"workflow": workflow, "categories": Category.choices, "errors": errors, "can_publish": can_publish}
    return render(request, "workflow_templates/save_as.html", context, status=422 if errors else 200)


#
# History
#


def _version_pair(request: HttpRequest, template):
    versions = list(services.template_versions(template))
    if len(versions) < 2 and not request.GET.get("from"):
        return versions, None, None
    old = (
        services.get_template_version(template, request.GET["from"])
        if request.GET.get("from", "").isdigit()
        else versions[1]
    )
    new = (
        services.get_template_version(template, request.GET["to"])
        if request.GET.get("to", "").isdigit()
        else versions[0]
    )
    return versions, old, new


def _show(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@login_required
def history(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Versions of a template, a diff between any two (graph and field list), restore."""
    template = services.access_template(request.user, pk)
    versions, old, new = _version_pair(request, template)
    diff = services.diff_template_versions(old, new) if old and new else None
    if diff:
        for change in [*diff["fields"], *diff["definition"], *(f for n in diff["nodes"] for f in n["fields"])]:
            change["from"], change["to"] = _show(change["from"]), _show(change["to"])
    numbered = [(len(versions) - i, v) for i, v in enumerate(versions)]
    number_of = {v.pk: number for number, v in numbered}
    return render(
        request,
        "workflow_templates/history.html",
        {
            "template": template,
            "versions": numbered,
            "old": old,
            "new": new,
            "diff": diff,
            "old_number": number_of.get(old.pk) if old else None,
            "new_number": number_of.get(new.pk) if new else None,
            "summary": summary_counts(diff) if diff else None,
            "can_restore": has_level(request.user, template, "change"),
        },
    )


@csp_exempt()  # type: ignore[arg-type]  # django-csp types a view as taking the request alone
@login_required
def history_graph(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    template = services.access_template(request.user, pk)
    _, old, new = _version_pair(request, template)
    if not (old and new):
        return HttpResponse(definition_svg(template.definition), content_type="image/svg+xml")
    before = services.template_version_fields(old)["definition"]
    after = services.template_version_fields(new)["definition"]
    colours = {n["id"]: n["change"] for n in diff_definitions(before, after)["nodes"]}
    return HttpResponse(
        definition_svg(after, diff=colours, removed_from=before, title="Changes"), content_type="image/svg+xml"
    )


@login_required
@require_POST
def restore(request: AuthenticatedHttpRequest, pk: int, vid: int) -> HttpResponse:
    template = services.access_template(request.user, pk, "change")
    version = services.get_template_version(template, vid)
    template = services.restore_template_version(template, version, acting_user=request.user)
    messages.success(request, f"Restored: {template.name} now holds that version's content, as a new version.")
    return redirect("workflow_templates:history", pk=template.pk)
