"""The inbox page: work items offered to me and held by me; claim and decide with htmx."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.types import AuthenticatedHttpRequest
from apps.common.htmx import base_template, is_htmx_partial

from . import services
from .choices import OPEN_STATES
from .models import WorkItem


def _rows(request: AuthenticatedHttpRequest, items) -> list[dict]:
    items = list(items)
    reasons = services.why_rows(request.user, items)
    return [
        {"item": item, "actions": services.actions_for(request.user, item), "why": reasons[item.pk]} for item in items
    ]


@login_required
@require_GET
def inbox(request: AuthenticatedHttpRequest) -> HttpResponse:
    items = (
        services.inbox(request.user)
        .select_related("workflow", "claimed_by")
        .prefetch_related("offered_groups")
        .order_by("due_at", "-created_at")[:200]
    )
    recent = (
        services.visible_work_items(request.user)
        .filter(claimed_by=request.user)
        .exclude(state__in=OPEN_STATES)
        .select_related("workflow")
        .order_by("-completed_at")[:20]
    )
    return render(
        request,
        "worklist/inbox.html",
        {
            "base": base_template(request),
            "rows": _rows(request, items),
            "recent": recent,
            "profile": services.work_profile(request.user),
            "profile_errors": {},
        },
    )


@login_required
@require_POST
def availability(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Set my availability (available, away until) and my workload limit from the inbox."""
    changes: dict = {"available": request.POST.get("available") == "on"}
    errors: dict[str, str] = {}
    away = request.POST.get("away_until", "").strip()
    if away:
        parsed = parse_datetime(away)
        if parsed is None:
            errors["away_until"] = "Give a date and time, e.g. 2030-01-31 18:00."
        else:
            changes["away_until"] = timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed
    else:
        changes["away_until"] = None
    limit = request.POST.get("max_open_items", "").strip()
    changes["max_open_items"] = int(limit) if limit.isdigit() else (None if not limit else limit)
    errors.update(services.check_work_profile(changes))
    if errors:
        profile = services.work_profile(request.user)
        items = (
            services.inbox(request.user)
            .select_related("workflow", "claimed_by")
            .prefetch_related("offered_groups")
            .order_by("due_at", "-created_at")[:200]
        )
        return render(
            request,
            "worklist/inbox.html",
            {
                "base": base_template(request),
                "rows": _rows(request, items),
                "recent": [],
                "profile": profile,
                "profile_errors": errors,
                "profile_form": request.POST,
            },
            status=422,
        )
    services.update_work_profile(request.user, **changes)
    messages.success(request, "Your availability is saved.")
    return redirect("worklist:inbox")


@login_required
@require_POST
def act(request: AuthenticatedHttpRequest, pk: int, action: str) -> HttpResponse:
    item = services.access_work_item(request.user, pk)
    try:
        if action == "claim":
            item = services.claim_work_item(item, request.user)
        elif action == "release":
            item = services.release_work_item(item, request.user)
        elif action == "start":
            item = services.start_work_item(item, request.user)
        elif action == "decline":
            item = services.decline_work_item(item, request.user)
        elif action == "complete":
            item = services.complete_work_item(
                item, request.user, request.POST.get("decision", ""), request.POST.get("comment", "").strip()
            )
        else:
            return HttpResponse(status=404)
        status = 200
        messages.success(
            request,
            f"“{item.title}”: {item.get_state_display().lower()}" + (f" ({item.decision})" if item.decision else ""),
        )
    except services.WorkItemError as exc:
        status = 422 if exc.status == 400 else 200
        messages.error(request, exc.message)
        item = WorkItem.objects.select_related("workflow", "claimed_by").get(pk=item.pk)
    if not is_htmx_partial(request):
        return redirect("worklist:inbox")
    row = {
        "item": item,
        "actions": services.actions_for(request.user, item),
        "why": services.why_rows(request.user, [item])[item.pk],
    }
    response = render(request, "worklist/partials/item.html", {"row": row, "oob_messages": True}, status=status)
    return response
