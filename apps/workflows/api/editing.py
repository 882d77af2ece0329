"""POST /api/v1/workflows/{id}/edits: change a definition by operations (the canvas's format)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from apps.sharing.services import access_workflow
from apps.workflows import editing
from apps.workflows.definition.ordering import ordered_definition
from apps.workflows.definition.validator import validate


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def conflict_response(exc: editing.EditConflict) -> Response:
    return Response(
        {"detail": str(exc), "code": "conflict", "revision": exc.current_revision}, status=status.HTTP_409_CONFLICT
    )


class EditRequestSerializer(serializers.Serializer):
    revision = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=40,
        help_text="The workflow's `revision` you last read; when it has changed since, nothing is saved and the "
        "answer is 409.",
    )
    ops = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        max_length=500,
        help_text=(
            'Operations applied in order, as one version: {"op": "add_node", "type", "id"?, "activity"?, '
            '"graph"?, "after"?, "x"?, "y"?}, '
            '{"op": "move_node", "node", "x", "y", "graph"?}, {"op": "connect", "source", "target", "label"?}, '
            '{"op": "disconnect", "source", "target", "kind"?}, {"op": "label_edge", "source", "target", '
            '"label", "kind"?}, '
            '{"op": "delete_node", "node"}, {"op": "replace", "definition"}.'
        ),
    )


EditResult = inline_serializer(
    "EditResult",
    {
        "revision": serializers.CharField(),
        "definition": serializers.JSONField(),
        "problems": serializers.ListField(child=serializers.DictField()),
    },
)


@extend_schema(
    summary="Edit the definition by operations (locked; 409 when someone saved since your revision)",
    request=EditRequestSerializer,
    responses={
        200: EditResult,
        400: OpenApiResponse(description="An operation cannot be applied; the body names it."),
        409: OpenApiResponse(description="The workflow changed since `revision`."),
    },
)
@api_view(["POST"])
def edit_workflow(request, pk: int) -> Response:
    workflow = access_workflow(request.user, pk, "change")
    body = EditRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        workflow = editing.apply_operations(
            workflow,
            body.validated_data["ops"],
            acting_user=request.user,
            expected_revision=body.validated_data.get("revision") or None,
        )
    except editing.EditConflict as exc:
        return conflict_response(exc)
    except editing.EditError as exc:
        return Response({exc.field or "ops": [exc.message], "code": "invalid_edit"}, status=status.HTTP_400_BAD_REQUEST)
    return Response(
        {
            "revision": editing.revision_of(workflow),
            "definition": ordered_definition(workflow.definition),
            "problems": [p.as_dict() for p in validate(workflow.definition)],
        }
    )
