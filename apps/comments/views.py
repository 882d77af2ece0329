"""Comments, activity feeds and notifications pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.accounts.types import AuthenticatedHttpRequest
from apps.sharing.services import access_workflow

from . import services
from .models import Comment, Notification, NotificationPreference


def _threads(workflow) -> list[tuple[Comment, int]]:
    """Comments in thread order with their depth."""
    comments = list(Comment.objects.filter(workflow=workflow).select_related("author"))
    children: dict[int | None, list[Comment]] = {}
    for comment in comments:
        children.setdefault(comment.parent_id, []).append(comment)
    out: list[tuple[Comment, int]] = []

    def walk(parent: int | None, depth: int) -> None:
        for comment in children.get(parent, []):
            out.append((comment, min(depth, 6)))
            walk(comment.pk, depth + 1)

    walk(None, 0)
    return out


@login_required
@require_http_methods(["GET", "POST"])
def workflow_comments(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    workflow = access_workflow(request.user, pk, "view")
    error = ""
    if request.method == "POST":
        action = request.POST.get("action", "add")
        body = request.POST.get("body", "").strip()[:10_000]
        if action == "add":
            parent = Comment.objects.filter(pk=request.POST.get("parent") or 0, workflow=workflow).first()
            node_id = request.POST.get("node_id", "").strip()[:64]
            if not body:
                error = "Write something first."
            elif parent is None and (problem := services.check_comment_node(workflow, node_id)):
                error = problem
            else:
                services.add_comment(workflow, author=request.user, body=body, node_id=node_id, parent=parent)
        else:
            comment = services.access_comment(request.user, workflow, request.POST.get("comment"))
            if action == "delete":
                services.delete_comment(comment, user=request.user)
            elif action == "edit" and body:
                services.edit_comment(comment, user=request.user, body=body)
        if not error and not request.htmx:
            return redirect(request.path)
    context = {
        "workflow": workflow,
        "threads": _threads(workflow),
        "error": error,
        "node_ids": services.node_ids(workflow),
    }
    template = "comments/partials/thread.html" if request.htmx else "comments/workflow_comments.html"
    return render(request, template, context, status=422 if error else 200)


@login_required
def workflow_activity(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = access_workflow(request.user, pk, "view")
    page = Paginator(services.workflow_feed(workflow), 50).get_page(request.GET.get("page"))
    return render(request, "activity/feed.html", {"workflow": workflow, "page": page})


@login_required
def my_activity(request: AuthenticatedHttpRequest) -> HttpResponse:
    page = Paginator(services.user_feed(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "activity/feed.html", {"workflow": None, "page": page})


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: AuthenticatedHttpRequest) -> HttpResponse:
    preference = services.preference_for(request.user)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "read-all":
            services.mark_read(request.user)
        elif action == "read" and request.POST.get("id", "").isdigit():
            services.mark_read(request.user, [int(request.POST["id"])])
        elif action == "preferences":
            for field in ("shared", "comment", "reply", "mention", "approval"):
                setattr(preference, f"email_{field}", request.POST.get(f"email_{field}") == "on")
            preference.save()
        return redirect("comments:notifications")
    page = Paginator(Notification.objects.filter(recipient=request.user), 50).get_page(request.GET.get("page"))
    kinds = [(f.name, f.verbose_name) for f in NotificationPreference._meta.fields if f.name.startswith("email_")]
    return render(
        request,
        "activity/notifications.html",
        {
            "page": page,
            "unread": services.unread_count(request.user),
            "preference": preference,
            "kinds": [(name, Notification.Kind(name[6:]).label, getattr(preference, name)) for name, _ in kinds],
        },
    )
