from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from reversion.models import Version

from apps.sharing.services import access_workflow
from apps.versions import services


class VersionSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    number = serializers.SerializerMethodField()
    author = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(source="revision.date_created")
    comment = serializers.CharField(source="revision.comment")

    def get_author(self, version: Version) -> str | None:
        user = version.revision.user
        return user.get_username() if user else None

    def get_number(self, version: Version) -> int:
        numbers = self.context.get("numbers")
        return numbers[version.pk] if numbers and version.pk in numbers else services.version_number(version)


class VersionDetailSerializer(VersionSerializer):
    content = serializers.SerializerMethodField()

    def get_content(self, version: Version) -> dict:
        return services.version_fields(version)


@extend_schema(summary="List a workflow's versions, newest first", responses=VersionSerializer(many=True))
@api_view(["GET"])
def version_list(request: Request, pk: int) -> Response:
    workflow = access_workflow(request.user, pk, "view")
    versions = list(services.versions_of(workflow))
    numbers = {v.pk: len(versions) - i for i, v in enumerate(versions)}
    return Response(VersionSerializer(versions, many=True, context={"numbers": numbers}).data)


@extend_schema(summary="Get one version with its content", responses=VersionDetailSerializer)
@api_view(["GET"])
def version_detail(request: Request, pk: int, vid: int) -> Response:
    workflow = access_workflow(request.user, pk, "view")
    return Response(VersionDetailSerializer(services.get_version(workflow, vid)).data)


@extend_schema(
    summary="Diff two versions: nodes and edges added, removed, changed (field by field)",
    parameters=[
        OpenApiParameter("from", OpenApiTypes.INT, required=True, description="The older version id."),
        OpenApiParameter("to", OpenApiTypes.INT, required=True, description="The newer version id."),
    ],
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
def version_diff(request: Request, pk: int) -> Response:
    workflow = access_workflow(request.user, pk, "view")
    errors = {}
    for key in ("from", "to"):
        if not str(request.query_params.get(key, "")).isdigit():
            errors[key] = ["A version id is required."]
    if errors:
        raise ValidationError(errors)
    old = services.get_version(workflow, request.query_params["from"])
    new = services.get_version(workflow, request.query_params["to"])
    diff = services.diff_versions(old, new)
    diff["summary"] = services.summary_counts(diff)
    return Response(diff)


@extend_schema(
    summary="Restore a version (records a new version 'Restored version N')",
    request=None,
    responses={
        201: inline_serializer(
            "RestoredVersion", {"version": VersionSerializer(), "workflow": serializers.IntegerField()}
        )
    },
)
@api_view(["POST"])
def version_restore(request: Request, pk: int, vid: int) -> Response:
    workflow = access_workflow(request.user, pk, "change")
    version = services.get_version(workflow, vid)
    workflow = services.restore_version(workflow, version, acting_user=request.user)
    newest = services.versions_of(workflow).first()
    return Response(
        {"workflow": workflow.pk, "version": VersionSerializer(newest).data}, status=status.HTTP_201_CREATED
    )
