"""Shares of workflows (and, through `shares_endpoints`, of templates: apps.templates.api): list (anyone
who can view), grant/change/revoke (admin level)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.types import account_of
from apps.sharing import shares
from apps.sharing.services import access_workflow


class ShareSerializer(serializers.Serializer):
    id = serializers.CharField(read_only=True, help_text="user-<id> or team-<id>")
    type = serializers.CharField(source="kind", read_only=True)
    user = serializers.SerializerMethodField()
    team = serializers.SerializerMethodField()
    level = serializers.CharField(read_only=True)

    def get_user(self, share: shares.Share) -> str | None:
        return share.name if share.kind == "user" else None

    def get_team(self, share: shares.Share) -> str | None:
        return share.name if share.kind == "team" else None


class NewShareSerializer(serializers.Serializer):
    user = serializers.CharField(required=False, help_text="Username to share with.")
    team = serializers.CharField(required=False, help_text="Team (group) name to share with.")
    level = serializers.ChoiceField(choices=["view", "edit", "change", "admin"])

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("user")) == bool(attrs.get("team")):
            raise serializers.ValidationError({"user": ["Give either a user or a team."]})
        grantee: User | Group | None
        if attrs.get("user"):
            grantee = get_user_model().objects.filter(username=attrs["user"], is_active=True).first()
            if grantee is None:
                raise serializers.ValidationError({"user": ["There is no such user."]})
        else:
            grantee = Group.objects.filter(name=attrs["team"]).first()
            if grantee is None:
                raise serializers.ValidationError({"team": ["There is no such team."]})
        attrs["grantee"] = grantee
        return attrs


class LevelSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=["view", "edit", "change", "admin"])


def shares_endpoints(fetch: Callable[[Any, Any, str], Any], label: str):
    """The list and detail endpoints for the shares of what `fetch(user, pk, level)` returns."""

    @extend_schema(
        summary=f"List or add shares of a {label}",
        request=NewShareSerializer,
        responses={200: ShareSerializer(many=True), 201: ShareSerializer},
    )
    @api_view(["GET", "POST"])
    def share_list(request: Request, pk: int) -> Response:
        if request.method == "GET":
            obj = fetch(request.user, pk, "view")
            return Response(ShareSerializer(shares.list_shares(obj), many=True).data)
        obj = fetch(request.user, pk, "admin")
        data = NewShareSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        grantee = data.validated_data["grantee"]
        if getattr(obj, "owner_id", None) == grantee.pk and not isinstance(grantee, Group):
            raise serializers.ValidationError({"user": ["The owner always has admin."]})
        share = shares.grant(obj, grantee, data.validated_data["level"], acting_user=account_of(request))
        return Response(ShareSerializer(share).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary=f"Change or remove one share of a {label}",
        request=LevelSerializer,
        responses={200: ShareSerializer, 204: None},
    )
    @api_view(["GET", "PATCH", "DELETE"])
    def share_detail(request: Request, pk: int, share_id: str) -> Response:
        obj = fetch(request.user, pk, "view" if request.method == "GET" else "admin")
        grantee = shares.find_grantee(share_id)
        current = next((s for s in shares.list_shares(obj) if s.id == share_id), None)
        if grantee is None or current is None:
            raise Http404("No such share.")
        if request.method == "GET":
            return Response(ShareSerializer(current).data)
        if current.kind == "user" and getattr(obj, "owner_id", None) == grantee.pk:
            raise serializers.ValidationError({"level": ["The owner's access cannot be changed."]})
        if request.method == "DELETE":
            shares.revoke(obj, grantee, acting_user=account_of(request))
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = LevelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        share = shares.grant(obj, grantee, data.validated_data["level"], acting_user=account_of(request))
        return Response(ShareSerializer(share).data)

    return share_list, share_detail


def _fetch_workflow(user, pk, level):
    return access_workflow(user, pk, level)


workflow_shares, workflow_share = shares_endpoints(_fetch_workflow, "workflow")
