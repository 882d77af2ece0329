"""The share dialog page: workflows here; apps.templates serves the same dialog for templates."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.accounts.types import AuthenticatedHttpRequest

from . import shares
from .services import access_workflow

LEVEL_CHOICES = [("view", "Can view"), ("change", "Can edit"), ("admin", "Admin (may share)")]


def share_dialog(request: AuthenticatedHttpRequest, obj, kind: str, back: str) -> HttpResponse:
    """The dialog for `obj` (fetched by the caller with at least view access); admins may change shares."""
    can_manage = shares.has_level(request.user, obj, "admin")
    error = ""
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied("Only admins of this item may manage its shares.")
        action = request.POST.get("action", "add")
        level = request.POST.get("level", "view")
        if action == "add":
            name = request.POST.get("grantee", "").strip()
            grantee: User | Group | None
            if name.startswith("team:"):
                grantee = Group.objects.filter(name=name[5:]).first()
            else:
                grantee = get_user_model().objects.filter(username=name, is_active=True).first()
            if not name:
                error = "Write a user name, or team:<name> for a team."
            elif grantee is None:
                error = f"There is no user or team “{name}” (write team:<name> for a team)."
            elif not isinstance(grantee, Group) and grantee.pk == getattr(obj, "owner_id", None):
                # A share would replace the owner's own permissions with a lower level and lock them out.
                error = f"{name} owns this {kind} and always has admin access."
            elif level not in dict(LEVEL_CHOICES):
                error = "Choose a level."
            else:
                shares.grant(obj, grantee, level, acting_user=request.user)
                messages.success(request, f"Shared with {name}.")
        else:
            grantee = shares.find_grantee(request.POST.get("share", ""))
            if grantee is None or (not isinstance(grantee, Group) and grantee.pk == obj.owner_id):
                raise Http404("No such share.")
            if action == "remove":
                shares.revoke(obj, grantee, acting_user=request.user)
                messages.success(request, "Share removed.")
            elif level in dict(LEVEL_CHOICES):
                shares.grant(obj, grantee, level, acting_user=request.user)
                messages.success(request, "Share changed.")
        if not error:
            return redirect(request.path)
    return render(
        request,
        "sharing/dialog.html",
        {
            "obj": obj,
            "kind": kind,
            "back": back,
            "shares": shares.list_shares(obj),
            "levels": LEVEL_CHOICES,
            "can_manage": can_manage,
            "error": error,
        },
        status=422 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def workflow_share(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    workflow = access_workflow(request.user, pk, "view")
    back = ""
    try:
        back = workflow.get_absolute_url()
    except Exception:
        pass
    return share_dialog(request, workflow, "workflow", back)
