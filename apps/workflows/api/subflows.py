"""Shared subflows: list, read, create, publish a version. Every signed-in user may read and use
them; the owner and staff publish versions."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from .. import subflows as services
from ..models import Subflow, SubflowVersion


class SubflowVersionSerializer(serializers.ModelSerializer):
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = SubflowVersion
        fields = ["number", "graph", "note", "created_by", "created_at"]
        read_only_fields = ["number", "created_by", "created_at"]


class SubflowSerializer(serializers.ModelSerializer):
    owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)
    latest_version = serializers.SerializerMethodField()
    graph = serializers.JSONField(write_only=True, help_text="Version 1: {nodes, edges, result?}.")
    note = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=300)

    class Meta:
        model = Subflow
        fields = ["slug", "name", "description", "owner", "created_at", "latest_version", "graph", "note"]
        read_only_fields = ["owner", "created_at"]

    def get_latest_version(self, subflow: Subflow) -> int | None:
        numbers = [v.number for v in subflow.versions.all()]
        return max(numbers) if numbers else None

    def validate_slug(self, slug: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9\-_]{0,99}", slug):
            raise ValidationError("Use lower-case letters, digits, '-' and '_', starting with a letter or digit.")
        return slug

    def validate_graph(self, graph):
        problems = services.check_graph(graph)
        if problems:
            raise ValidationError([p.as_dict() for p in problems])
        return graph


class PublishSerializer(serializers.Serializer):
    graph = serializers.JSONField(help_text="{nodes, edges, result?}")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)

    def validate_graph(self, graph):
        problems = services.check_graph(graph)
        if problems:
            raise ValidationError([p.as_dict() for p in problems])
        return graph


@extend_schema(methods=["GET"], summary="List the shared subflows", responses=SubflowSerializer(many=True))
@extend_schema(
    methods=["POST"],
    summary="Create a subflow with its first version (you become its owner)",
    request=SubflowSerializer,
    responses={201: SubflowSerializer},
)
@api_view(["GET", "POST"])
def subflow_list(request: Request) -> Response:
    if request.method == "POST":
        serializer = SubflowSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subflow = services.create_subflow(
            owner=request.user,
            slug=data["slug"],
            name=data["name"],
            description=data.get("description", ""),
            graph=data["graph"],
            note=data.get("note", ""),
        )
        return Response(SubflowSerializer(subflow).data, status=status.HTTP_201_CREATED)
    subflows = Subflow.objects.select_related("owner").prefetch_related("versions")
    return Response(SubflowSerializer(subflows, many=True).data)


@extend_schema(
    summary="A subflow with every version",
    responses={200: OpenApiResponse(description="{slug, name, description, owner, versions: [...]}")},
)
@api_view(["GET"])
def subflow_detail(request: Request, slug: str) -> Response:
    subflow = get_object_or_404(
        Subflow.objects.select_related("owner").prefetch_related("versions__created_by"), slug=slug
    )
    data = SubflowSerializer(subflow).data
    data["versions"] = SubflowVersionSerializer(subflow.versions.all(), many=True).data
    return Response(data)


@extend_schema(
    summary="Publish the next version of a subflow (owner and staff)",
    request=PublishSerializer,
    responses={201: SubflowVersionSerializer, 403: OpenApiResponse(description="Not the owner")},
)
@api_view(["POST"])
def subflow_publish(request: Request, slug: str) -> Response:
    subflow = get_object_or_404(Subflow, slug=slug)
    if not services.can_publish(request.user, subflow):
        raise PermissionDenied("Only the subflow's owner and staff publish versions.")
    serializer = PublishSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    version = services.publish_version(
        subflow,
        graph=serializer.validated_data["graph"],
        acting_user=request.user,
        note=serializer.validated_data["note"],
    )
    return Response(SubflowVersionSerializer(version).data, status=status.HTTP_201_CREATED)
