from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from apps.accounts.models import APIKey


class APIKeySerializer(serializers.ModelSerializer):
    """An API key as its owner sees it: never the key itself, nor its hash.

    The library's primary key is `<prefix>.<hash>`, so the prefix is the key's
    public identifier here (and in URLs).
    """

    url = serializers.HyperlinkedIdentityField(view_name="api:api-key-detail", lookup_field="prefix")

    class Meta:
        model = APIKey
        fields = ["prefix", "url", "name", "created", "expiry_date", "last_used_at", "revoked"]
        read_only_fields = ["prefix", "created", "last_used_at", "revoked"]
        extra_kwargs = {
            "name": {"help_text": "What the key is for, e.g. 'CI deploys'.", "allow_blank": False, "required": True},
            "expiry_date": {"help_text": "After this moment the key is refused. Empty: never expires."},
        }

    def validate_expiry_date(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("The expiry date must be in the future.")
        return value


class NewAPIKeySerializer(APIKeySerializer):
    """The answer to creating a key: the only time the full key is shown."""

    key = serializers.CharField(read_only=True, help_text="The full key. Store it now: it is shown only this once.")

    class Meta(APIKeySerializer.Meta):
        fields = [*APIKeySerializer.Meta.fields, "key"]


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False, write_only=True)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(
        help_text="Send as `Authorization: Token <token>`. Shown only this once (stored hashed)."
    )
    expires_at = serializers.DateTimeField(help_text="After this moment the token is refused; rotate it before then.")
