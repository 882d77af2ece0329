"""A workflow's triggers page: schedules with their next fire times, event triggers, webhooks."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.common.htmx import base_template
from apps.sharing.services import access_workflow, has_workflow_perm


@login_required
@require_GET
def workflow_triggers(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = access_workflow(request.user, pk, "view")
    schedules = [{"schedule": s, "next": s.next_fire_times(3)} for s in workflow.schedules.all()]
    return render(
        request,
        "triggers/workflow_triggers.html",
        {
            "base": base_template(request),
            "workflow": workflow,
            "schedules": schedules,
            "event_triggers": workflow.event_triggers.all(),
            "webhooks": workflow.webhooks.all(),
            "can_change": has_workflow_perm(request.user, workflow, "change"),
            "api_base": f"/api/v1/workflows/{workflow.pk}",
        },
    )
