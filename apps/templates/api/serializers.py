from __future__ import annotations

from rest_framework import serializers

from apps.templates import services
from apps.templates.models import Category, TemplateReview, WorkflowTemplate
from apps.workflows.definition.validator import validate


class WorkflowTemplateSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    slug = serializers.SlugField(required=False, max_length=200)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
    definition = serializers.JSONField()
    sample_input = serializers.JSONField(required=False)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    usage_count = serializers.SerializerMethodField()
    success_rate = serializers.SerializerMethodField()
    rating = serializers.SerializerMethodField(help_text="Average stars (1-5) of the reviews; null without any.")
    review_count = serializers.SerializerMethodField()
    url = serializers.HyperlinkedIdentityField(view_name="api:template-detail")

    class Meta:
        model = WorkflowTemplate
        fields = [
            "id",
            "url",
            "name",
            "slug",
            "category",
            "description",
            "tags",
            "definition",
            "sample_input",
            "is_public",
            "owner",
            "usage_count",
            "success_rate",
            "rating",
            "review_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "owner", "created_at", "updated_at"]

    def get_usage_count(self, obj: WorkflowTemplate) -> int:
        return obj.stats()["usage_count"]

    def get_success_rate(self, obj: WorkflowTemplate) -> float | None:
        return obj.stats()["success_rate"]

    def get_rating(self, obj: WorkflowTemplate) -> float | None:
        return obj.stats()["rating"]

    def get_review_count(self, obj: WorkflowTemplate) -> int:
        return obj.stats()["review_count"]

    def validate_slug(self, value: str) -> str:
        qs = WorkflowTemplate.objects.filter(slug=value)
        if self.instance is not None:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise serializers.ValidationError("A template with this slug already exists.")
        return value

    def validate_definition(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("The definition must be a JSON object.")
        problems = validate(value)
        if problems:
            raise serializers.ValidationError([str(p) for p in problems])
        return value

    def validate_sample_input(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("The sample input must be a JSON object.")
        return value

    def create(self, validated_data):
        user = self.context["request"].user
        return services.create_template(owner=user, **validated_data)

    def update(self, instance, validated_data):
        return services.update_template(instance, acting_user=self.context["request"].user, **validated_data)


class InstantiateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=False)


class SaveAsTemplateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    slug = serializers.SlugField(max_length=200, required=False)
    category = serializers.ChoiceField(choices=Category.choices, default=Category.CUSTOM)
    description = serializers.CharField(required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
    sample_input = serializers.JSONField(required=False)
    is_public = serializers.BooleanField(default=False)

    def validate_slug(self, value: str) -> str:
        if WorkflowTemplate.objects.filter(slug=value).exists():
            raise serializers.ValidationError("A template with this slug already exists.")
        return value


class CreatedWorkflowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()


class TemplateReviewSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    rating = serializers.IntegerField(min_value=1, max_value=5, help_text="Stars, 1 to 5.")
    text = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", help_text="A short review."
    )

    class Meta:
        model = TemplateReview
        fields = ["user", "rating", "text", "created_at", "updated_at"]
        read_only_fields = ["user", "created_at", "updated_at"]
