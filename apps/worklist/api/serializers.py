from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from .. import allocation
from ..allocation import open_item_counts
from ..models import WorkItem
from ..services import actions_for, can_manage


class WorkItemSerializer(serializers.ModelSerializer):
    workflow = serializers.SerializerMethodField()
    claimed_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(slug_field="username", read_only=True)
    offered_users: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", many=True, read_only=True
    )
    offered_groups: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="name", many=True, read_only=True
    )
    actions = serializers.SerializerMethodField(help_text="What you may do with the item now.")
    why = serializers.SerializerMethodField(
        help_text="Why the item is offered to you or held by you (null when it is neither)."
    )
    allocation = serializers.SerializerMethodField(
        help_text="Workflow admins and staff: the strategy, each person's reason, who was skipped and why, and "
        "the log of offers."
    )

    class Meta:
        model = WorkItem
        fields = [
            "id",
            "title",
            "description",
            "state",
            "outcomes",
            "decision",
            "comment",
            "due_at",
            "workflow",
            "execution",
            "node_id",
            "offered_users",
            "offered_groups",
            "claimed_by",
            "created_at",
            "claimed_at",
            "started_at",
            "completed_at",
            "actions",
            "why",
            "allocation",
        ]
        read_only_fields = fields

    def get_workflow(self, item: WorkItem) -> dict:
        return {"id": item.workflow_id, "name": item.workflow.name}

    def get_why(self, item: WorkItem) -> str | None:
        request = self.context.get("request")
        if request is None:
            return None
        user = request.user
        mine = item.claimed_by_id == user.pk or any(u.pk == user.pk for u in item.offered_users.all())
        if not mine and not user.groups.filter(pk__in=[g.pk for g in item.offered_groups.all()]).exists():
            return None
        return allocation.why(item, user)

    def get_allocation(self, item: WorkItem) -> dict | None:
        request = self.context.get("request")
        return item.allocation if request and can_manage(request.user, item) else None

    def get_actions(self, item: WorkItem) -> list[str]:
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


class WorkProfileSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username", read_only=True)
    available = serializers.BooleanField(required=False, help_text="False: no new work items are offered to you.")
    away_until = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Unavailable until then, then available again."
    )
    # The column is a PostgreSQL integer: a larger number is the caller's mistake (400), not a 500.
    max_open_items = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**31 - 1,
        help_text="Offer nothing new while you have this many open items.",
    )
    capabilities = serializers.ListField(
        child=serializers.CharField(max_length=50), read_only=True, help_text="Set by staff in the admin."
    )
    open_items = serializers.SerializerMethodField()

    def get_open_items(self, profile) -> int:
        return open_item_counts([profile.user_id])[profile.user_id]
