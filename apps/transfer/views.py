"""Import page (file upload with drag and drop, preview, progress) and export download."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from apps.accounts.types import AuthenticatedHttpRequest
from apps.sharing.services import access_workflow, visible_workflows
from apps.workflows import jsontext

from . import services

MAX_UPLOAD = 20 * 1024 * 1024


@login_required
@require_http_methods(["GET", "POST"])
def import_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    context: dict = {"result": None, "error": "", "on_conflict": request.POST.get("on_conflict", "rename")}
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("document")
        if upload is None:
            context["error"] = "Choose an export file (.json)."
        elif (upload.size or 0) > MAX_UPLOAD:
            context["error"] = "The file is larger than 20 MB."
        else:
            try:
                document = jsontext.loads(upload.read().decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                context["error"] = f"The file is not valid JSON: {exc}"
            else:
                on_conflict: services.OnConflict = "skip" if context["on_conflict"] == "skip" else "rename"
                dry_run = request.POST.get("mode") != "import"
                context["result"] = services.import_document(
                    document, user=request.user, on_conflict=on_conflict, dry_run=dry_run, request=request
                )
        if context["error"] or (context["result"] and not context["result"].ok):
            status = 422
    template = (
        "transfer/partials/import_result.html"
        if request.htmx or request.headers.get("X-Requested-With") == "XMLHttpRequest"
        else "transfer/import.html"
    )
    return render(request, template, context, status=status)


@login_required
def export_download(request: AuthenticatedHttpRequest) -> HttpResponse:
    ids = [int(i) for i in request.GET.getlist("ids") if i.isdigit()]
    if ids:
        workflows = [access_workflow(request.user, pk, "view") for pk in dict.fromkeys(ids)]
    else:
        workflows = list(visible_workflows(request.user).order_by("name"))
    if request.GET.get("download") or ids:
        document = services.export_workflows(
            workflows, include_history=request.GET.get("history") == "1", exported_by=request.user.get_username()
        )
        services.record_export(
            workflows, user=request.user, request=request, include_history=request.GET.get("history") == "1", via="ui"
        )
        response = HttpResponse(json.dumps(document, indent=2), content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="workflows-export.json"'
        return response
    return render(request, "transfer/export.html", {"workflows": workflows})
