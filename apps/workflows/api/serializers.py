from __future__ import annotations

from django.contrib.auth.models import Group
from rest_framework import serializers

from apps.workflows import services
from apps.workflows.definition.ordering import ordered_definition
from apps.workflows.models import Workflow


class WorkflowSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    team = serializers.SlugRelatedField(slug_field="name", queryset=Group.objects.all(), required=False, allow_null=True)
    slug = serializers.SlugField(required=False, max_length=200)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
    definition = serializers.JSONField(required=False)
    url = serializers.HyperlinkedIdentityField(view_name="api:workflow-detail")
    version_note = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=500,
        help_text="A note for the version this change records (shown in the version history).",
    )

    class Meta:
        model = Workflow
        fields = [
            "id", "url", "name", "slug", "description", "tags", "definition", "is_active",
            "owner", "team", "created_at", "updated_at", "version_note",
        ]
        read_only_fields = ["id", "owner", "created_at", "updated_at"]

    def validate_slug(self, value: str) -> str:
        qs = Workflow.objects.filter(slug=value)
        if self.instance is not None:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise serializers.ValidationError("A workflow with this slug already exists.")
        return value

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if "definition" in data:
            data["definition"] = ordered_definition(data["definition"])
        return data

    def validate_definition(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("The definition must be a JSON object.")
        return value

    def validate(self, attrs):
        if "definition" in attrs:
            previous = self.instance.definition if self.instance is not None else None
            problems = services.check_definition_permitted(self.context["request"].user, attrs["definition"], previous)
            if problems:
                raise serializers.ValidationError({"definition": problems})
        return attrs

    def validate_team(self, team):
        user = self.context["request"].user
        if team is not None and not user.is_superuser and not user.groups.filter(pk=team.pk).exists():
            raise serializers.ValidationError("You are not a member of this team.")
        return team

    def create(self, validated_data):
        user = self.context["request"].user
        note = validated_data.pop("version_note", "")
        return services.create_workflow(owner=user, acting_user=user, **validated_data, **({"comment": note} if note else {}))

    def update(self, instance, validated_data):
        user = self.context["request"].user
        note = validated_data.pop("version_note", "")
        return services.update_workflow(instance, acting_user=user, comment=note, **validated_data)
