"""Templates library pages: library (grid/list, category filter, search), detail, use, save as."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST
from csp.decorators import csp_exempt

from apps.sharing.services import access_workflow
from apps.sharing.shares import has_level
from apps.workflows.views import search_text
from apps.versions.graphs import definition_svg
from apps.workflows.canvas import canvas_model, render_readonly

from . import services
from .models import Category


@login_required
def library(request: HttpRequest) -> HttpResponse:
    qs = services.visible_templates(request.user).select_related("owner").with_stats()
    category = request.GET.get("category", "")
    query = search_text(request.GET.get("q", ""))
    if category in Category.values:
        qs = qs.filter(category=category)
    if query:
        qs = qs.filter(Q(name__icontains=query) | Q(description__icontains=query) | Q(tags__icontains=query))
    view = "list" if request.GET.get("view") == "list" else "grid"
    template = "workflow_templates/partials/results.html" if request.htmx else "workflow_templates/library.html"
    return render(request, template, {"templates": qs.order_by("name"), "categories": Category.choices, "category": category, "q": query, "view": view})


@login_required
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    template = services.access_template(request.user, pk)
    template = services.visible_templates(request.user).with_stats().get(pk=template.pk)
    drawing = mark_safe(render_readonly(canvas_model(template.definition, problems=[]), title=f"Preview of {template.name}", canvas_id="tpl"))  # noqa: S308 - the template escapes
    return render(request, "workflow_templates/detail.html", {
        "template": template, "stats": template.stats(), "can_share": has_level(request.user, template, "admin"), "drawing": drawing,
    })


@csp_exempt()
@login_required
def graph(request: HttpRequest, pk: int) -> HttpResponse:
    template = services.access_template(request.user, pk)
    return HttpResponse(definition_svg(template.definition, title=template.name), content_type="image/svg+xml")


@login_required
@require_POST
def use(request: HttpRequest, pk: int) -> HttpResponse:
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
def save_as(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = access_workflow(request.user, pk, "view")
    errors: dict[str, str] = {}
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        category = request.POST.get("category", Category.CUSTOM)
        if not name:
            errors["name"] = "Give the template a name."
        if category not in Category.values:
            errors["category"] = "Choose a category."
        if not errors:
            template = services.save_workflow_as_template(
                workflow, user=request.user, name=name, category=category,
                description=request.POST.get("description", workflow.description),
                is_public=request.POST.get("is_public") == "on",
            )
            messages.success(request, "Saved as a template.")
            return redirect("workflow_templates:detail", pk=template.pk)
    return render(request, "workflow_templates/save_as.html", {"workflow": workflow, "categories": Category.choices, "errors": errors}, status=422 if errors else 200)
