from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework import serializers

from apps.workflows import services
from apps.workflows.definition.ordering import ordered_definition
from apps.workflows.editing import EditConflict, revision_of
from apps.workflows.models import Workflow

from .editing import Conflict


class WorkflowSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    team = serializers.SlugRelatedField(
        slug_field="name", queryset=Group.objects.all(), required=False, allow_null=True
    )
    slug = serializers.SlugField(required=False, max_length=200)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
    definition = serializers.JSONField(required=False)
    url = serializers.HyperlinkedIdentityField(view_name="api:workflow-detail")
    revision = serializers.SerializerMethodField(
        help_text="Changes whenever the workflow is saved; send it back as `expected_revision`."
    )
    expected_revision = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=40,
        help_text="The `revision` you last read: when the workflow changed since, nothing is saved and the "
        "answer is 409.",
    )
    version_note = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="A note for the version this change records (shown in the version history).",
    )

    class Meta:
        model = Workflow
        fields = [
            "id",
            "url",
            "name",
            "slug",
            "description",
            "tags",
            "definition",
            "is_active",
            "owner",
            "team",
            "created_at",
            "updated_at",
            "revision",
            "expected_revision",
            "version_note",
        ]
        read_only_fields = ["id", "owner", "created_at", "updated_at"]

    def validate_slug(self, value: str) -> str:
        qs = Workflow.objects.filter(slug=value)
        if self.instance is not None:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise serializers.ValidationError("A workflow with this slug already exists.")
        return value

    def get_revision(self, instance: Workflow) -> str:
        return revision_of(instance)

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

    def _create(self, validated_data):
        user = self.context["request"].user
        note = validated_data.pop("version_note", "")
        return services.create_workflow(
            owner=user, acting_user=user, **validated_data, **({"comment": note} if note else {})
        )

    def create(self, validated_data):
        validated_data.pop("expected_revision", None)
        return self._create(validated_data)

    @transaction.atomic
    def update(self, instance, validated_data):
        user = self.context["request"].user
        note = validated_data.pop("version_note", "")
        expected = validated_data.pop("expected_revision", "")
        locked = Workflow.objects.select_for_update(of=("self",)).get(pk=instance.pk)
        if expected and expected != revision_of(locked):
            raise Conflict(
                {"detail": str(EditConflict(revision_of(locked))), "code": "conflict", "revision": revision_of(locked)}
            )
        for field in Workflow._meta.concrete_fields:  # the locked row is the one we write
            setattr(instance, field.attname, getattr(locked, field.attname))
        return services.update_workflow(instance, acting_user=user, comment=note, **validated_data)
