from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from ..models import WorkItem


class WorkItemSerializer(serializers.ModelSerializer):
    workflow = serializers.SerializerMethodField()
    claimed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    offered_users = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    offered_groups = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    actions = serializers.SerializerMethodField(help_text="What you may do with the item now.")

    class Meta:
        model = WorkItem
        fields = [
            "id", "title", "description", "state", "outcomes", "decision", "comment", "due_at",
            "workflow", "execution", "node_id", "offered_users", "offered_groups", "claimed_by",
            "created_at", "claimed_at", "started_at", "completed_at", "actions",
        ]
        read_only_fields = fields

    def get_workflow(self, item: WorkItem) -> dict:
        return {"id": item.workflow_id, "name": item.workflow.name}

    def get_actions(self, item: WorkItem) -> list[str]:
        from ..services import actions_for

        request = self.context.get("request")
        return actions_for(request.user, item) if request else []


class CompleteSerializer(serializers.Serializer):
    decision = serializers.CharField(max_length=100)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)


class ReassignSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=150, help_text="Username of the new holder.")

    def validate_user(self, value: str):
        user = get_user_model().objects.filter(username=value, is_active=True).first()
        if user is None:
            raise serializers.ValidationError(f"no active user named '{value}'")
        return user
