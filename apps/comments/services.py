"""Writes for comments, the activity feed and notifications.

Views, API endpoints and signal handlers call these. Emails go out after commit.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from apps.sharing.services import has_workflow_perm, visible_workflows
from apps.workflows.definition.graph import iter_nodes
from apps.workflows.models import Workflow

from .models import Activity, Comment, Notification, NotificationPreference
from .rendering import mentioned_usernames

logger = logging.getLogger(__name__)


def _url(name: str, *args: Any) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


#
# Activity
#


def record_activity(verb: str, *, workflow: Workflow, actor: User | None = None, target: str = "") -> Activity:
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return Activity.objects.create(verb=verb, workflow=workflow, actor=actor, target=target[:200])


def workflow_feed(workflow: Workflow) -> QuerySet[Activity]:
    return Activity.objects.filter(workflow=workflow).select_related("actor", "workflow")


def user_feed(viewer: User, actor: User | None = None) -> QuerySet[Activity]:
    """Activity on workflows `viewer` can see; only `actor`'s when given (a per-user feed)."""
    qs = Activity.objects.filter(workflow__in=visible_workflows(viewer)).select_related("actor", "workflow")
    if actor is not None:
        qs = qs.filter(actor=actor)
    return qs


#
# Notifications
#


def preference_for(user: User) -> NotificationPreference:
    preference, _ = NotificationPreference.objects.get_or_create(user=user)
    return preference


def notify(recipient: User, kind: str, text: str, url: str = "") -> Notification | None:
    """An in-app notification, plus an email after commit when the recipient wants one.

    Other apps (approvals) call this with kind="approval". Inactive users get nothing.
    """
    if not recipient.is_active:
        return None
    notification = Notification.objects.create(recipient=recipient, kind=kind, text=text[:500], url=url[:500])
    if settings.WB_NOTIFICATION_EMAILS and recipient.email and preference_for(recipient).wants_email(kind):
        link = settings.WB_SITE_URL.rstrip("/") + url if url else ""
        subject = f"[Workflow Builder] {Notification.Kind(kind).label}"
        body = text + (f"\n\n{link}" if link else "") + "\n\nChange which emails you get in your notification settings."

        def send() -> None:
            try:
                send_mail(subject, body, None, [recipient.email])
            except Exception:  # an unreachable mail server must not break the request
                logger.exception("could not email notification %s", notification.pk)

        transaction.on_commit(send)
    return notification


def unread_count(user: User) -> int:
    return Notification.objects.filter(recipient=user, read=False).count()


def mark_read(user: User, ids: list[int] | None = None) -> int:
    """Mark the user's notifications read (all when ids is None); returns how many changed."""
    qs = Notification.objects.filter(recipient=user, read=False)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read=True)


def on_shared(obj: Any, grantee: User | Group, level: str, *, acting_user: User) -> None:
    """After a share: activity (workflows) and a notification to the user or each team member."""
    is_workflow = isinstance(obj, Workflow)
    label = "workflow" if is_workflow else "template"
    if is_workflow:
        record_activity(
            Activity.Verb.SHARED,
            workflow=obj,
            actor=acting_user,
            target=f"{'team' if isinstance(grantee, Group) else 'user'} {grantee}",
        )
    url = _url("comments:workflow-activity", obj.pk) if is_workflow else _url("workflow_templates:detail", obj.pk)
    recipients = list(grantee.user_set.all()) if isinstance(grantee, Group) else [grantee]
    who = acting_user.get_username()
    for user in recipients:
        if user.pk != acting_user.pk:
            notify(user, Notification.Kind.SHARED, f"{who} shared the {label} “{obj}” with you ({level}).", url)


#
# Comments
#


def access_comment(user: User, workflow: Workflow, comment_id: Any) -> Comment:
    try:
        return Comment.objects.select_related("author").get(pk=comment_id, workflow=workflow)
    except (Comment.DoesNotExist, ValueError, TypeError):
        raise Http404("No such comment.") from None


def node_ids(workflow: Workflow) -> list[str]:
    """Ids of the workflow's nodes (nested ones included), in definition order: what a comment may be on."""
    return [str(node["id"]) for node, _parent, _where in iter_nodes(workflow.definition.get("nodes")) if node.get("id")]


def check_comment_node(workflow: Workflow, node_id: str) -> str | None:
    """The problem with commenting on `node_id` (None when it is fine; "" means the whole workflow)."""
    if node_id and node_id not in node_ids(workflow):
        return f"There is no node “{node_id}” in this workflow."
    return None


@transaction.atomic
def add_comment(
    workflow: Workflow, *, author: User, body: str, node_id: str = "", parent: Comment | None = None
) -> Comment:
    """Post a comment (the caller checked view permission); notifies the workflow's owner,
    the parent's author (a reply) and @mentioned users who can see the workflow."""
    if parent is not None:
        if parent.workflow_id != workflow.pk:
            raise ValueError("the parent comment belongs to another workflow")
        node_id = parent.node_id
    comment = Comment.objects.create(workflow=workflow, author=author, body=body, node_id=node_id, parent=parent)
    record_activity(
        Activity.Verb.COMMENTED,
        workflow=workflow,
        actor=author,
        target=f"comment {comment.pk}" + (f" on node {node_id}" if node_id else ""),
    )
    url = _url("comments:workflow-comments", workflow.pk) + f"#comment-{comment.pk}"
    who = author.get_username()
    told = {author.pk}
    where = f"“{workflow}”" + (f" (node {node_id})" if node_id else "")
    if parent is not None and parent.author_id not in told and not parent.is_deleted:
        notify(parent.author, Notification.Kind.REPLY, f"{who} replied to your comment on {where}.", url)
        told.add(parent.author_id)
    User = get_user_model()
    names = mentioned_usernames(body)
    for user in User.objects.filter(username__in=names, is_active=True):
        if user.pk not in told and has_workflow_perm(user, workflow, "view"):
            notify(user, Notification.Kind.MENTION, f"{who} mentioned you on {where}.", url)
            told.add(user.pk)
    if workflow.owner_id not in told:
        notify(workflow.owner, Notification.Kind.COMMENT, f"{who} commented on your workflow {where}.", url)
    return comment


def _own(comment: Comment, user: User) -> None:
    if comment.author_id != user.pk:
        raise PermissionDenied("You can only change your own comments.")
    if comment.is_deleted:
        raise PermissionDenied("This comment was deleted.")


@transaction.atomic
def edit_comment(comment: Comment, *, user: User, body: str) -> Comment:
    _own(comment, user)
    comment.body = body
    comment.edited_at = timezone.now()
    comment.save(update_fields=["body", "edited_at"])
    return comment


@transaction.atomic
def delete_comment(comment: Comment, *, user: User) -> None:
    """Soft delete: the text goes, the place in the thread stays for its replies."""
    _own(comment, user)
    comment.is_deleted = True
    comment.body = ""
    comment.save(update_fields=["is_deleted", "body"])
