from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.comments.models import Activity, Comment, Notification, NotificationPreference
from apps.comments.rendering import render_body


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True)
    body = serializers.CharField(max_length=10_000, trim_whitespace=True)
    body_html = serializers.SerializerMethodField(
        help_text="The body rendered safely (escaped, small markdown subset)."
    )
    # A declared field: DRF's metaclass moves it out of the class, so it does not shadow Field.parent.
    parent: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(read_only=True)  # type: ignore[assignment]
    parent_id = serializers.IntegerField(write_only=True, required=False, allow_null=True)
    node_id = serializers.CharField(max_length=64, required=False, allow_blank=True)

    class Meta:
        model = Comment
        fields = [
            "id",
            "workflow",
            "node_id",
            "parent",
            "parent_id",
            "author",
            "body",
            "body_html",
            "created_at",
            "edited_at",
            "is_deleted",
        ]
        read_only_fields = ["id", "workflow", "author", "created_at", "edited_at", "is_deleted"]

    def get_body_html(self, comment: Comment) -> str:
        return "" if comment.is_deleted else str(render_body(comment.body))


class CommentEditSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=10_000)


class ActivitySerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    workflow_name = serializers.CharField(source="workflow.name", read_only=True)

    class Meta:
        model = Activity
        fields = ["id", "actor", "verb", "workflow", "workflow_name", "target", "created_at"]

    def get_actor(self, activity: Activity) -> str | None:
        return activity.actor.get_username() if activity.actor else None


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "text", "url", "read", "created_at"]


class NotificationPreferenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = NotificationPreference
        fields = ["email_shared", "email_comment", "email_reply", "email_mention", "email_approval"]


class MarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), required=False, help_text="Omit to mark all read.")
