"""Managing a workflow's triggers, and the two ways in: events and inbound webhooks."""

from __future__ import annotations

from typing import Any

from django.db import models
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import roles
from apps.accounts.throttling import SimpleRateThrottle
from apps.sharing.services import access_workflow, has_workflow_perm

from .. import services
from ..models import EventTrigger, Schedule, WebhookEndpoint
from .serializers import EventSerializer, EventTriggerSerializer, ScheduleSerializer, WebhookSerializer

_workflow_param = OpenApiParameter("workflow_pk", int, OpenApiParameter.PATH, description="The workflow's id")


class WorkflowTriggerViewSet(viewsets.ModelViewSet):
    """A workflow's triggers of one kind: the view permission lists them, change manages them."""

    model: type[models.Model] = Schedule

    def get_workflow(self):
        if not hasattr(self, "_workflow"):
            perm = "view" if self.request.method in permissions.SAFE_METHODS else "change"
            self._workflow = access_workflow(self.request.user, self.kwargs["workflow_pk"], perm)
        return self._workflow

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.model.objects.filter(workflow=self.get_workflow()).select_related("workflow")

    def perform_create(self, serializer) -> None:
        # What a trigger starts runs as its creator: setting one up needs a role that starts runs.
        roles.require_capability(self.request.user, roles.RUN_WORKFLOWS)
        serializer.save()

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False) and "workflow_pk" in self.kwargs:
            context["workflow"] = self.get_workflow()
            context["can_change"] = has_workflow_perm(self.request.user, context["workflow"], "change")
        return context


@extend_schema_view(
    list=extend_schema(
        summary="The workflow's cron schedules, with their next fire times", parameters=[_workflow_param]
    ),
    create=extend_schema(summary="Add a cron schedule (five fields, an IANA time zone)", parameters=[_workflow_param]),
    retrieve=extend_schema(parameters=[_workflow_param]),
    update=extend_schema(parameters=[_workflow_param]),
    partial_update=extend_schema(summary="Change a schedule (e.g. enabled: false)", parameters=[_workflow_param]),
    destroy=extend_schema(parameters=[_workflow_param]),
)
class ScheduleViewSet(WorkflowTriggerViewSet):
    model = Schedule
    serializer_class = ScheduleSerializer
    queryset = Schedule.objects.none()

    def perform_destroy(self, instance: Schedule) -> None:
        services.delete_schedule(instance)


@extend_schema_view(
    list=extend_schema(summary="The workflow's event triggers", parameters=[_workflow_param]),
    create=extend_schema(
        summary="Start the workflow on events of a type (with an optional condition and input mapping)",
        parameters=[_workflow_param],
    ),
    retrieve=extend_schema(parameters=[_workflow_param]),
    update=extend_schema(parameters=[_workflow_param]),
    partial_update=extend_schema(parameters=[_workflow_param]),
    destroy=extend_schema(parameters=[_workflow_param]),
)
class EventTriggerViewSet(WorkflowTriggerViewSet):
    model = EventTrigger
    serializer_class = EventTriggerSerializer
    queryset = EventTrigger.objects.none()


@extend_schema_view(
    list=extend_schema(
        summary="The workflow's inbound webhooks (secrets are never listed)", parameters=[_workflow_param]
    ),
    create=extend_schema(
        summary="Add an inbound webhook; the answer holds its secret, shown once", parameters=[_workflow_param]
    ),
    retrieve=extend_schema(parameters=[_workflow_param]),
    update=extend_schema(parameters=[_workflow_param]),
    partial_update=extend_schema(parameters=[_workflow_param]),
    destroy=extend_schema(parameters=[_workflow_param]),
)
class WebhookViewSet(WorkflowTriggerViewSet):
    model = WebhookEndpoint
    serializer_class = WebhookSerializer
    queryset = WebhookEndpoint.objects.none()

    def perform_update(self, serializer) -> None:
        endpoint = serializer.save()
        services.record_webhook_audit(
            "webhook_changed",
            endpoint,
            self.request.user,
            {"fields": sorted(serializer.validated_data)},
            request=self.request,
        )

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        services.delete_webhook(instance, acting_user=self.request.user, request=self.request)

    @extend_schema(
        summary="Replace the secret; the answer holds the new one, shown once",
        request=None,
        responses=WebhookSerializer,
        parameters=[_workflow_param],
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, workflow_pk=None, pk=None):
        endpoint = self.get_object()
        endpoint._new_secret = services.rotate_webhook_secret(endpoint, acting_user=request.user, request=request)
        return Response(self.get_serializer(endpoint).data)


_event_result = inline_serializer(
    "EventResult",
    {
        "started": serializers.ListField(child=serializers.IntegerField(), help_text="Ids of the executions started."),
        "skipped": serializers.ListField(
            child=serializers.DictField(),
            help_text="{workflow, trigger, reason} for matching triggers that started nothing.",
        ),
    },
)


@extend_schema(
    summary="Send an event: starts every active workflow whose trigger matches the type and whose condition "
    "holds (among those you may change)",
    request=EventSerializer,
    responses={202: _event_result},
)
@api_view(["POST"])
@permission_classes([permissions.IsAuthenticated])
def events(request):
    roles.require_capability(request.user, roles.RUN_WORKFLOWS)
    serializer = EventSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    result = services.ingest_event(
        serializer.validated_data["type"], serializer.validated_data.get("payload", {}), acting_user=request.user
    )
    return Response(result, status=status.HTTP_202_ACCEPTED)


class WebhookThrottle(SimpleRateThrottle):
    """Per endpoint: one noisy sender cannot flood a workflow with runs."""

    scope = "webhook"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": view.kwargs.get("token", "")}


class InboundWebhookView(APIView):
    """POST /api/v1/hooks/<token>: the raw body, signed with the endpoint's secret, starts a run."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [WebhookThrottle]
    parser_classes: list = []

    @extend_schema(
        summary="Start a run from an inbound webhook (X-Workflow-Timestamp: <unix seconds>; "
        'X-Workflow-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + the raw body>)',
        request={"application/json": {"type": "object"}},
        responses={
            202: inline_serializer("WebhookAccepted", {"execution": serializers.IntegerField()}),
            400: OpenApiResponse(description="Not a JSON object, or the input breaks the workflow's schema"),
            401: OpenApiResponse(description="Missing or bad signature, or a timestamp outside the tolerance window"),
            403: OpenApiResponse(description="The endpoint's creator may no longer run the workflow"),
            409: OpenApiResponse(
                description="A replay (this timestamp and signature were already received), or an inactive workflow"
            ),
            404: OpenApiResponse(description="Unknown or disabled token"),
            429: OpenApiResponse(description="Too many requests for this endpoint"),
        },
    )
    def post(self, request, token: str):
        try:
            execution = services.receive_webhook(
                token,
                request.body,
                request.headers.get("X-Workflow-Signature", ""),
                request.headers.get("X-Workflow-Timestamp", ""),
                request=request,
            )
        except services.TriggerError as exc:
            body: dict[str, Any] = {"detail": exc.message}
            if exc.field:
                body[exc.field] = [exc.message]
            return Response(body, status=exc.status)
        return Response({"execution": execution.pk}, status=status.HTTP_202_ACCEPTED)
