"""Credentials CRUD (scoped to the caller) and the AI assistance endpoints."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts import roles
from apps.accounts.types import account_of
from apps.sharing.services import access_workflow
from apps.workflows.definition.validator import DefinitionError, compile_definition, validate

from .. import ai_usage, assistant, dryrun, llm, services
from ..models import Credential
from .serializers import (
    CredentialSerializer,
    DefinitionRequestSerializer,
    DryRunRequestSerializer,
    InterpretRequestSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="List your credentials (secrets are never returned)"),
    create=extend_schema(summary="Store a credential (its secret is encrypted at rest)"),
    retrieve=extend_schema(summary="Get one of your credentials (without its secret)"),
    update=extend_schema(summary="Replace a credential; a new secret replaces the stored one"),
    partial_update=extend_schema(summary="Change some fields; omit secret to keep it"),
    destroy=extend_schema(summary="Delete a credential"),
)
class CredentialViewSet(viewsets.ModelViewSet):
    serializer_class = CredentialSerializer
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "last_used_at"]
    ordering = ["name"]
    filterset_fields = ["kind"]

    queryset = Credential.objects.none()  # for the schema generator; requests use get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Credential.objects.none()
        # Scoped to the owner: a stranger's credential is a 404, even for staff through the API.
        return Credential.objects.filter(owner=self.request.user).prefetch_related("workflows")

    def create(self, request, *args, **kwargs):
        roles.require_capability(request.user, roles.MANAGE_CREDENTIALS)
        return super().create(request, *args, **kwargs)

    def perform_destroy(self, instance: Credential) -> None:
        services.delete_credential(instance, acting_user=self.request.user, request=self.request)


_problems = inline_serializer(
    "DefinitionProblems",
    {"valid": serializers.BooleanField(), "problems": serializers.ListField(child=serializers.DictField())},
)


@extend_schema(
    summary="What agents may use: node types, activities with params schemas, operators, mapping functions",
    responses={200: OpenApiResponse(description="Capabilities")},
)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def capabilities(request: Request) -> Response:
    data = assistant.capabilities()
    data["ai_configured"] = llm.configured()
    return Response(data)


@extend_schema(
    summary="Validate a definition: every problem, each naming the node and the field",
    request=DefinitionRequestSerializer,
    responses={200: _problems},
)
@api_view(["POST"])
@permission_classes([IsAuthenticated])
def validate_definition(request: Request) -> Response:
    serializer = DefinitionRequestSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    problems = validate(serializer.validated_data["definition"])
    return Response({"valid": not problems, "problems": [p.as_dict() for p in problems]})


@extend_schema(
    summary="Dry-run a definition on sample input; external activities are replaced by declared or recorded outputs",
    request=DryRunRequestSerializer,
    responses={
        200: OpenApiResponse(description="The trace and result"),
        400: OpenApiResponse(description="Invalid definition, with problems"),
    },
)
@api_view(["POST"])
@permission_classes([IsAuthenticated])
def test_definition(request: Request) -> Response:
    serializer = DryRunRequestSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    recorded: dict = {}
    definition = data.get("definition")
    if data.get("workflow") is not None:
        workflow = access_workflow(request.user, data["workflow"], "view")
        recorded = dryrun.recorded_outputs(workflow)
        if definition is None:
            definition = workflow.definition
    try:
        plan = compile_definition(definition)
    except DefinitionError as exc:
        return Response(
            {
                "detail": "The definition has problems.",
                "code": "invalid_definition",
                "problems": [p.as_dict() for p in exc.problems],
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    except (TypeError, ValueError) as exc:
        return Response(
            {"detail": f"The definition cannot be read: {exc}", "code": "invalid_definition", "problems": []},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return Response(dryrun.dry_run(plan, data.get("input") or {}, mocks=data.get("mocks") or {}, recorded=recorded))


@extend_schema(
    summary="Turn a plain-language request into a validated workflow definition (with an explanation and a confidence)",
    request=InterpretRequestSerializer,
    responses={
        200: OpenApiResponse(description="{definition, explanation, confidence, model, attempts}"),
        422: OpenApiResponse(description="The model's definition failed validation: {detail, problems, definition}"),
        429: OpenApiResponse(
            description="A daily AI budget (yours or the total) is spent: {detail, code, scope, kind, limit, "
            "used, resets_at}, with Retry-After"
        ),
        502: OpenApiResponse(description="The provider failed"),
        503: OpenApiResponse(description="No provider is configured"),
    },
)
@api_view(["POST"])
@permission_classes([IsAuthenticated])
def interpret(request: Request) -> Response:
    if not llm.configured():
        return Response(
            {"detail": llm.not_configured_message(), "code": "ai_not_configured"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    serializer = InterpretRequestSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    base = serializer.validated_data.get("definition")
    try:
        result = assistant.interpret(
            serializer.validated_data["prompt"], base=base if isinstance(base, dict) else None, user=request.user
        )
    except ai_usage.BudgetExceeded as exc:
        return Response(
            exc.as_dict(), status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(exc.retry_after)}
        )
    except llm.NotConfigured as exc:
        return Response({"detail": str(exc), "code": "ai_not_configured"}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    except llm.ProviderError as exc:
        return Response({"detail": str(exc), "code": "ai_provider_error"}, status=status.HTTP_502_BAD_GATEWAY)
    if not result.valid:
        return Response(
            {
                "detail": "The model's definition is not valid; nothing was created.",
                "code": "invalid_definition",
                "problems": [p.as_dict() for p in result.problems],
                "definition": result.definition,
                "attempts": result.attempts,
            },
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    return Response(
        {
            "definition": result.definition,
            "explanation": result.explanation,
            "confidence": result.confidence,
            "model": result.model,
            "attempts": result.attempts,
            "problems": [],
        }
    )


@extend_schema(
    summary="Your AI usage today and what is left of the daily budgets (yours and the total); null limits mean none",
    responses={
        200: OpenApiResponse(description="{user: {requests, tokens}, total: {requests, tokens}, resets_at, recent}")
    },
)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def usage(request: Request) -> Response:
    data = ai_usage.budget_report(request.user)
    data["recent"] = [
        {
            "at": u.created_at.isoformat(),
            "purpose": u.purpose,
            "status": u.status,
            "model": u.model,
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens,
            "latency_ms": u.latency_ms,
            "cache_hit": u.cache_hit,
            "execution": u.execution_id,
            "node_id": u.node_id,
        }
        for u in account_of(request).ai_usage.all()[:50]
    ]
    return Response(data)
