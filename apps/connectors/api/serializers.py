from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.sharing.services import has_workflow_perm
from apps.workflows.models import Workflow

from .. import services
from ..choices import CredentialKind
from ..models import Credential


class CredentialSerializer(serializers.ModelSerializer):
    """The secret is write-only: responses say only whether one is stored."""

    secret = serializers.CharField(
        write_only=True, required=False, max_length=10_000, trim_whitespace=False, style={"input_type": "password"}
    )
    kind = serializers.ChoiceField(choices=CredentialKind.choices)
    has_secret = serializers.SerializerMethodField()
    allowed_hosts = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        max_length=100,
        help_text="Hosts the secret may be sent to ('api.example.com', '*.example.com', optionally ':port'). "
        "Empty: none.",
    )
    shared_with = serializers.SlugRelatedField(
        many=True,
        required=False,
        slug_field="username",
        queryset=get_user_model().objects.filter(is_active=True),
        help_text="Usernames who may also put this credential into workflow definitions (runs still need a grant "
        "in `workflows`).",
    )
    workflows = serializers.PrimaryKeyRelatedField(
        many=True,
        required=False,
        queryset=Workflow.objects.all(),
        help_text="Ids of the workflows whose runs may use this credential (workflows you can see).",
    )

    class Meta:
        model = Credential
        fields = [
            "id",
            "name",
            "kind",
            "description",
            "username",
            "field_name",
            "secret",
            "has_secret",
            "allowed_hosts",
            "workflows",
            "shared_with",
            "created_at",
            "updated_at",
            "last_used_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "last_used_at"]

    def get_has_secret(self, obj: Credential) -> bool:
        return bool(obj.secret_encrypted)

    def validate_name(self, value: str) -> str:
        owner = self.context["request"].user
        qs = Credential.objects.filter(owner=owner, name=value)
        if self.instance is not None:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise serializers.ValidationError("You already have a credential with this name.")
        return value

    def validate_workflows(self, value: list) -> list:
        user = self.context["request"].user
        for workflow in value:
            if not has_workflow_perm(user, workflow, "view"):
                raise serializers.ValidationError(f'Invalid pk "{workflow.pk}" - object does not exist.')
        return value

    def validate(self, attrs: dict) -> dict:
        if self.instance is None and not attrs.get("secret"):
            raise serializers.ValidationError({"secret": "This field is required."})
        if "secret" in attrs and attrs["secret"] == "":
            raise serializers.ValidationError({"secret": "The secret cannot be empty."})
        merged = {
            "allowed_hosts": attrs.get("allowed_hosts", getattr(self.instance, "allowed_hosts", [])),
            "kind": attrs.get("kind", getattr(self.instance, "kind", "")),
            "username": attrs.get("username", getattr(self.instance, "username", "")),
            "field_name": attrs.get("field_name", getattr(self.instance, "field_name", "")),
        }
        problems = services.check_credential(merged.pop("kind"), **merged)
        if problems:
            raise serializers.ValidationError(problems)
        return attrs

    def create(self, validated_data: dict) -> Credential:
        request = self.context["request"]
        return services.create_credential(
            owner=request.user, acting_user=request.user, request=request, **validated_data
        )

    def update(self, instance: Credential, validated_data: dict) -> Credential:
        request = self.context["request"]
        secret = validated_data.pop("secret", None)
        return services.update_credential(
            instance, secret=secret, acting_user=request.user, request=request, **validated_data
        )


class DefinitionRequestSerializer(serializers.Serializer):
    definition = serializers.JSONField()


class DryRunRequestSerializer(serializers.Serializer):
    definition = serializers.JSONField(
        required=False, help_text="The definition to try; or give workflow to try a stored one."
    )
    workflow = serializers.IntegerField(
        required=False,
        help_text="A workflow you can view: its definition (unless given) and its last completed run's step "
        "outputs as recorded mocks.",
    )
    input = serializers.JSONField(required=False, default=dict)
    mocks = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        default=dict,
        help_text="node id -> the output an external activity should pretend to return.",
    )

    def validate_workflows(self, value: list) -> list:
        user = self.context["request"].user
        for workflow in value:
            if not has_workflow_perm(user, workflow, "view"):
                raise serializers.ValidationError(f'Invalid pk "{workflow.pk}" - object does not exist.')
        return value

    def validate(self, attrs: dict) -> dict:
        if "definition" not in attrs and "workflow" not in attrs:
            raise serializers.ValidationError({"definition": "Give a definition or a workflow id."})
        if not isinstance(attrs.get("input", {}), dict):
            raise serializers.ValidationError({"input": "The input must be a JSON object."})
        return attrs


class InterpretRequestSerializer(serializers.Serializer):
    prompt = serializers.CharField(
        max_length=20_000, required=False, help_text="What the workflow should do, in plain language."
    )
    request = serializers.CharField(
        max_length=20_000, required=False, help_text="The former name of prompt, still accepted."
    )
    definition = serializers.JSONField(
        required=False, help_text="An existing definition to change instead of starting from nothing."
    )

    def validate(self, attrs: dict) -> dict:
        prompt, alias = attrs.get("prompt"), attrs.pop("request", None)
        if prompt is not None and alias is not None and prompt != alias:
            raise serializers.ValidationError({"prompt": "Give prompt or its alias request, not two different texts."})
        if prompt is None and alias is None:
            raise serializers.ValidationError({"prompt": "This field is required (request is accepted as its alias)."})
        attrs["prompt"] = prompt if prompt is not None else alias
        return attrs
