from __future__ import annotations

import json

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.types import account_of
from apps.sharing.services import access_workflow
from apps.transfer import services
from apps.transfer.schema import published_export_schema


class ExportRequestSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=1000)
    include_history = serializers.BooleanField(default=False)


class ImportRequestSerializer(serializers.Serializer):
    document = serializers.JSONField()
    on_conflict = serializers.ChoiceField(choices=["rename", "skip"], default="rename")
    dry_run = serializers.BooleanField(default=False)


def export_response(request: Request, ids: list[int], include_history: bool) -> Response:
    # Every id is checked: one the caller cannot see answers 404 and nothing is exported.
    workflows = [access_workflow(request.user, pk, "view") for pk in dict.fromkeys(ids)]
    document = services.export_workflows(
        workflows, include_history=include_history, exported_by=request.user.get_username()
    )
    services.record_export(
        workflows, user=account_of(request), request=request, include_history=include_history, via="api"
    )
    return Response(document)


@extend_schema(
    summary="Export workflows you can view as one document (GET with ?ids=1,2 or POST)",
    parameters=[
        OpenApiParameter("ids", OpenApiTypes.STR, description="GET: comma-separated workflow ids."),
        OpenApiParameter("include_history", OpenApiTypes.BOOL, description="GET: add past runs (secrets redacted)."),
    ],
    request=ExportRequestSerializer,
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET", "POST"])
def export_view(request: Request) -> Response:
    if request.method == "GET":
        raw = ",".join(request.query_params.getlist("ids"))
        try:
            ids = [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            raise serializers.ValidationError({"ids": ["Give workflow ids, comma-separated."]}) from None
        if not ids:
            raise serializers.ValidationError({"ids": ["This field is required."]})
        history = request.query_params.get("include_history") in ("1", "true", "yes")
        return export_response(request, ids, history)
    data = ExportRequestSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    return export_response(request, data.validated_data["ids"], data.validated_data["include_history"])


@extend_schema(
    summary="Import an export document (all or nothing; dry_run previews)",
    request=ImportRequestSerializer,
    responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
)
@api_view(["POST"])
def import_view(request: Request) -> Response:
    data = ImportRequestSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    result = services.import_document(
        data.validated_data["document"],
        user=account_of(request),
        on_conflict=data.validated_data["on_conflict"],
        dry_run=data.validated_data["dry_run"],
        request=request,
    )
    body = result.as_dict()
    if not result.ok:
        body["detail"] = f"The document has {len(result.problems)} problem(s); nothing was imported."
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    return Response(body, status=status.HTTP_200_OK if result.dry_run else status.HTTP_201_CREATED)


@extend_schema(summary="The JSON Schema of export documents", responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
@permission_classes([AllowAny])
def export_schema(request: Request) -> HttpResponse:
    return HttpResponse(json.dumps(published_export_schema(), indent=2), content_type="application/schema+json")
