from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.types import account_of
from apps.comments import services
from apps.comments.models import Comment, Notification
from apps.sharing.services import access_workflow

from .serializers import (
    ActivitySerializer,
    CommentEditSerializer,
    CommentSerializer,
    MarkReadSerializer,
    NotificationPreferenceSerializer,
    NotificationSerializer,
)


def _page(request: Request, queryset, serializer_class) -> Response:
    paginator = PageNumberPagination()
    page: list[Any] | None = paginator.paginate_queryset(queryset, request)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


#
# Comments
#


@extend_schema(
    summary="List a workflow's comments (oldest first; `parent` links replies) or post one",
    parameters=[OpenApiParameter("node_id", OpenApiTypes.STR, description="Only the comments on this node.")],
    request=CommentSerializer,
    responses={200: CommentSerializer(many=True), 201: CommentSerializer},
)
@api_view(["GET", "POST"])
def comment_list(request: Request, pk: int) -> Response:
    workflow = access_workflow(request.user, pk, "view")
    if request.method == "GET":
        qs = Comment.objects.filter(workflow=workflow).select_related("author")
        if "node_id" in request.query_params:
            qs = qs.filter(node_id=request.query_params["node_id"])
        return Response(CommentSerializer(qs, many=True).data)
    data = CommentSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    problem = services.check_comment_node(workflow, data.validated_data.get("node_id", ""))
    if problem:
        raise serializers.ValidationError({"node_id": [problem]})
    parent = None
    if data.validated_data.get("parent_id"):
        parent = Comment.objects.filter(pk=data.validated_data["parent_id"], workflow=workflow).first()
        if parent is None:
            raise serializers.ValidationError({"parent_id": ["No such comment on this workflow."]})
    comment = services.add_comment(
        workflow,
        author=account_of(request),
        body=data.validated_data["body"],
        node_id=data.validated_data.get("node_id", ""),
        parent=parent,
    )
    return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="Get, edit or delete one comment (edit and delete: your own only)",
    request=CommentEditSerializer,
    responses={200: CommentSerializer, 204: None},
)
@api_view(["GET", "PATCH", "DELETE"])
def comment_detail(request: Request, pk: int, cid: int) -> Response:
    workflow = access_workflow(request.user, pk, "view")
    comment = services.access_comment(account_of(request), workflow, cid)
    if request.method == "GET":
        return Response(CommentSerializer(comment).data)
    if request.method == "DELETE":
        services.delete_comment(comment, user=account_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
    data = CommentEditSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    comment = services.edit_comment(comment, user=account_of(request), body=data.validated_data["body"])
    return Response(CommentSerializer(comment).data)


#
# Activity
#


@extend_schema(summary="Activity on one workflow, newest first", responses=ActivitySerializer(many=True))
@api_view(["GET"])
def workflow_activity(request: Request, pk: int) -> Response:
    workflow = access_workflow(request.user, pk, "view")
    return _page(request, services.workflow_feed(workflow), ActivitySerializer)


@extend_schema(
    summary="Activity on the workflows you can see; `?user=name` for one person's actions",
    parameters=[OpenApiParameter("user", OpenApiTypes.STR, description="Only this user's actions.")],
    responses=ActivitySerializer(many=True),
)
@api_view(["GET"])
def activity_feed(request: Request) -> Response:
    actor = None
    if request.query_params.get("user"):
        actor = get_user_model().objects.filter(username=request.query_params["user"]).first()
        if actor is None:
            raise Http404("No such user.")
    return _page(request, services.user_feed(account_of(request), actor), ActivitySerializer)


#
# Notifications
#


@extend_schema(
    summary="Your notifications, newest first",
    parameters=[OpenApiParameter("unread", OpenApiTypes.BOOL, description="Only unread ones.")],
    responses=NotificationSerializer(many=True),
)
@api_view(["GET"])
def notification_list(request: Request) -> Response:
    qs = Notification.objects.filter(recipient=account_of(request))
    if request.query_params.get("unread") in ("1", "true", "yes"):
        qs = qs.filter(read=False)
    return _page(request, qs, NotificationSerializer)


@extend_schema(
    summary="How many of your notifications are unread",
    responses=inline_serializer("UnreadCount", {"unread": serializers.IntegerField()}),
)
@api_view(["GET"])
def unread_count(request: Request) -> Response:
    return Response({"unread": services.unread_count(account_of(request))})


@extend_schema(
    operation_id="notifications_mark_read",
    summary="Mark your notifications read (the ids given, or all)",
    request=MarkReadSerializer,
    responses=inline_serializer(
        "MarkedRead", {"marked": serializers.IntegerField(), "unread": serializers.IntegerField()}
    ),
)
@api_view(["POST"])
def mark_read(request: Request) -> Response:
    data = MarkReadSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    marked = services.mark_read(account_of(request), data.validated_data.get("ids"))
    return Response({"marked": marked, "unread": services.unread_count(account_of(request))})


@extend_schema(
    operation_id="notification_mark_read",
    summary="Mark one notification read",
    request=None,
    responses=NotificationSerializer,
)
@api_view(["POST"])
def mark_one_read(request: Request, nid: int) -> Response:
    notification = Notification.objects.filter(recipient=account_of(request), pk=nid).first()
    if notification is None:
        raise Http404("No such notification.")
    services.mark_read(account_of(request), [notification.pk])
    notification.refresh_from_db()
    return Response(NotificationSerializer(notification).data)


@extend_schema(
    summary="Your email preferences for notifications",
    request=NotificationPreferenceSerializer,
    responses=NotificationPreferenceSerializer,
)
@api_view(["GET", "PUT", "PATCH"])
def preferences(request: Request) -> Response:
    preference = services.preference_for(account_of(request))
    if request.method == "GET":
        return Response(NotificationPreferenceSerializer(preference).data)
    data = NotificationPreferenceSerializer(preference, data=request.data, partial=request.method == "PATCH")
    data.is_valid(raise_exception=True)
    data.save()
    return Response(data.data)
