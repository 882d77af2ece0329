from __future__ import annotations

import django_filters
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from apps.accounts import roles
from apps.accounts.services import record_audit
from apps.executions.access import access_execution, visible_executions
from apps.executions.choices import FINISHED_EXECUTION, ExecutionStatus
from apps.executions.engine import orchestrator
from apps.executions.engine.signals import SignalRejected, chain_of
from apps.executions.models import Execution
from apps.executions.orchestration import execution_state, send_signal_to_chain
from apps.executions.presenters import dynamic_graph
from apps.sharing.services import access_workflow
from apps.workflows.definition.schema import published_schema
from apps.workflows.definition.validator import DefinitionError, validate
from workflowsite.paging import EstimatedCountPaginator

from .serializers import (
    ExecutionDetailSerializer,
    ExecutionEventSerializer,
    ExecutionListSerializer,
    RetryWithChangesSerializer,
    RunRequestSerializer,
    SignalSerializer,
    ValidationResultSerializer,
)


def definition_error_response(exc: DefinitionError) -> Response:
    return Response(
        {
            "detail": "The workflow definition is invalid.",
            "code": "invalid_definition",
            "problems": [p.as_dict() for p in exc.problems],
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


def input_error_response(exc: orchestrator.InputError) -> Response:
    return Response({exc.field: [exc.message], "code": "invalid_input"}, status=status.HTTP_400_BAD_REQUEST)


class ExecutionFilter(django_filters.FilterSet):
    workflow = django_filters.NumberFilter(field_name="workflow_id")
    workflow_slug = django_filters.CharFilter(field_name="workflow__slug")
    # distinct=False: a filter on the run's own column needs no DISTINCT (which made the page a
    # SELECT DISTINCT over every column, JSON included, and its count a DISTINCT over every match).
    status = django_filters.MultipleChoiceFilter(choices=ExecutionStatus.choices, distinct=False)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    parent = django_filters.NumberFilter(field_name="parent_id")

    class Meta:
        model = Execution
        fields = ["workflow", "workflow_slug", "status", "created_after", "created_before", "parent"]


class RunPagination(PageNumberPagination):
    """`count` counts at most 1,000 runs, or one past the page asked for (it then means "at least"); for a
    superuser's unfiltered list it is PostgreSQL's estimate of the table. Counting every match was a scan
    of up to the whole table on every page (workflowsite/paging.py); `next` and `previous` work as before,
    to the last page."""

    django_paginator_class = EstimatedCountPaginator


class ExecutionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs of the workflows you can see."""

    pagination_class = RunPagination

    filterset_class = ExecutionFilter
    ordering_fields = ["created_at", "finished_at"]
    ordering = ["-created_at"]
    search_fields: list[str] = []

    def get_queryset(self):
        return visible_executions(self.request.user).select_related("workflow")

    def get_serializer_class(self):
        return ExecutionListSerializer if self.action == "list" else ExecutionDetailSerializer

    def get_object(self):
        perm = (
            "run"
            if self.action in ("retry", "retry_with_changes", "retry_failed")
            else "change"
            if self.action in ("cancel", "pin", "signal", "pause", "resume")
            else "view"
        )
        return access_execution(self.request.user, self.kwargs["pk"], perm)

    @extend_schema(
        summary="The run's event history, oldest first (paginated)", responses=ExecutionEventSerializer(many=True)
    )
    @action(detail=True, methods=["get"])
    def events(self, request, pk=None):
        execution = self.get_object()
        qs = execution.events.order_by("seq")
        after = request.query_params.get("after_seq")
        if after:
            try:
                qs = qs.filter(seq__gt=int(after))
            except ValueError:
                raise ValidationError({"after_seq": ["must be an integer"]}) from None
        event_type = request.query_params.get("type")
        if event_type:
            qs = qs.filter(type=event_type)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(ExecutionEventSerializer(page, many=True).data)

    @extend_schema(
        summary="A dynamic node's items: status, dependencies, timings, step and child run, the critical path",
        description=(
            "Item status is queued, ready (queued with every dependency completed), running, completed, failed, "
            "blocked (a dependency failed) or cancelled. Before the node starts: status `not_started` and no items."
        ),
        responses={200: dict, 404: OpenApiResponse(description="No such run, or no dynamic node with that id.")},
    )
    @action(detail=True, methods=["get"], url_path=r"dynamic/(?P<node_id>[A-Za-z][A-Za-z0-9_\-]{0,63})")
    def dynamic(self, request, pk=None, node_id=None):
        execution = self.get_object()
        graph = dynamic_graph(execution, node_id)
        if graph is None:
            raise Http404("No dynamic node with that id.")
        return Response({"execution": execution.pk, **graph})

    @extend_schema(
        summary="Cancel a run (running steps are revoked)",
        request=None,
        responses={200: ExecutionDetailSerializer, 409: OpenApiResponse(description="The run has finished.")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        execution = self.get_object()
        if not orchestrator.cancel_execution(execution, acting_user=request.user):
            return Response(
                {"detail": f"The run has already finished ({execution.status}).", "code": "finished"},
                status=status.HTTP_409_CONFLICT,
            )
        record_audit(
            "execution_cancelled",
            actor=request.user,
            request=request,
            target=f"execution {execution.pk}",
            detail={"workflow": execution.workflow_id, "via": "api"},
        )
        execution.refresh_from_db()
        return Response(ExecutionDetailSerializer(execution, context={"request": request}).data)

    @extend_schema(
        summary="Start a new run with the same input", request=None, responses={201: ExecutionDetailSerializer}
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        execution = self.get_object()
        try:
            new = orchestrator.retry_execution(execution, acting_user=request.user)
        except DefinitionError as exc:
            return definition_error_response(exc)
        except orchestrator.InputError as exc:
            return input_error_response(exc)
        return Response(
            ExecutionDetailSerializer(new, context={"request": request}).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Send a signal (declared in the definition, or pause / resume / cancel) with a JSON payload",
        request=SignalSerializer,
        responses={
            200: dict,
            400: OpenApiResponse(
                description="Undeclared signal or a payload that breaks its schema (names the field)."
            ),
            409: OpenApiResponse(description="The run has finished."),
        },
    )
    @action(detail=True, methods=["post"], url_path=r"signals/(?P<name>[A-Za-z][A-Za-z0-9_.\-]{0,63})")
    def signal(self, request, pk=None, name=None):
        execution = self.get_object()
        payload = request.data.get("payload", {}) if isinstance(request.data, dict) else request.data
        try:
            target, result = send_signal_to_chain(execution, name, payload, actor=request.user.get_username())
        except SignalRejected as exc:
            body = {exc.field: [exc.message]} if exc.field else {"detail": exc.message}
            body["code"] = "signal_rejected"
            return Response(body, status=exc.status)
        extra = {"sent_to": target.pk} if target.pk != execution.pk else {}
        return Response({"execution": execution.pk, "signal": name, **extra, **result})

    @extend_schema(
        summary="Pause a run (running steps finish; nothing new starts)",
        request=None,
        responses={200: ExecutionDetailSerializer, 409: OpenApiResponse(description="Not running.")},
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        execution = self.get_object()
        if not orchestrator.pause_execution(execution, actor=request.user.get_username()):
            return Response(
                {
                    "detail": f"Only a running run can be paused (this one is {execution.status}).",
                    "code": "not_running",
                },
                status=status.HTTP_409_CONFLICT,
            )
        return Response(ExecutionDetailSerializer(execution, context={"request": request}).data)

    @extend_schema(
        summary="Resume a paused run",
        request=None,
        responses={200: ExecutionDetailSerializer, 409: OpenApiResponse(description="Not paused.")},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        execution = self.get_object()
        if not orchestrator.resume_execution(execution, actor=request.user.get_username()):
            return Response(
                {"detail": f"Only a paused run can be resumed (this one is {execution.status}).", "code": "not_paused"},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(ExecutionDetailSerializer(execution, context={"request": request}).data)

    @extend_schema(summary="The continue-as-new chain this run belongs to, with totals", responses={200: dict})
    @action(detail=True, methods=["get"])
    def chain(self, request, pk=None):
        execution = self.get_object()
        runs = chain_of(execution)
        rows = []
        for run in runs:
            loop = run.steps.filter(node_type="loop", scope="").order_by("-id").first()
            rows.append(
                {
                    "id": run.pk,
                    "status": run.status,
                    "started_at": run.started_at,
                    "finished_at": run.finished_at,
                    "iterations": (loop.state.get("iterations") if loop else None),
                    "events": run.last_seq,
                }
            )
        iterations = max((r["iterations"] or 0 for r in rows), default=0)
        return Response(
            {
                "execution": execution.pk,
                "runs": rows,
                "totals": {
                    "runs": len(rows),
                    "iterations": iterations,
                    "events": sum(r["events"] for r in rows),
                    "status": runs[-1].status,
                },
            }
        )

    @extend_schema(
        summary="Orchestration state: dynamic nodes' items by status, concurrency, queue, critical path, ETA; "
        "child runs",
        responses={200: dict},
    )
    @action(detail=True, methods=["get"])
    def state(self, request, pk=None):
        return Response(execution_state(self.get_object()))

    @extend_schema(
        summary="Re-run only the failed and blocked items of a finished run's dynamic nodes",
        request=None,
        responses={201: ExecutionDetailSerializer},
    )
    @action(detail=True, methods=["post"], url_path="retry-failed")
    def retry_failed(self, request, pk=None):
        execution = self.get_object()
        if execution.status not in FINISHED_EXECUTION:
            return Response(
                {
                    "detail": f"The run is still {execution.status}; retry its failed items once it has finished.",
                    "code": "not_finished",
                },
                status=status.HTTP_409_CONFLICT,
            )
        try:
            new = orchestrator.retry_failed(execution, acting_user=request.user)
        except orchestrator.InputError as exc:
            return Response({"detail": exc.message, "code": "nothing_to_retry"}, status=status.HTTP_409_CONFLICT)
        return Response(
            ExecutionDetailSerializer(new, context={"request": request}).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Re-run a failed run with a changed input or node params, from the earliest step the changes reach",
        description="With `preview: true` nothing starts: the answer says which step the new run would re-run "
        "from, why, and which steps it keeps.",
        request=RetryWithChangesSerializer,
        responses={201: ExecutionDetailSerializer, 200: dict},
    )
    @action(detail=True, methods=["post"], url_path="retry-with-changes")
    def retry_with_changes(self, request, pk=None):
        execution = self.get_object()
        if execution.status != ExecutionStatus.FAILED:
            return Response(
                {"detail": "Only failed runs can be retried with changes.", "code": "not_failed"},
                status=status.HTTP_409_CONFLICT,
            )
        body = RetryWithChangesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if body.validated_data.get("preview"):
            try:
                retry = orchestrator.plan_retry_with_changes(
                    execution,
                    input=body.validated_data.get("input"),
                    node_params=body.validated_data.get("node_params"),
                )
            except DefinitionError as exc:
                return definition_error_response(exc)
            except orchestrator.InputError as exc:
                return input_error_response(exc)
            return Response(
                {"rerun_from": retry.rerun_from, "reason": retry.reason, "kept_steps": [s.node_id for s in retry.kept]}
            )
        try:
            new = orchestrator.retry_with_changes(
                execution,
                acting_user=request.user,
                input=body.validated_data.get("input"),
                node_params=body.validated_data.get("node_params"),
            )
        except DefinitionError as exc:
            return definition_error_response(exc)
        except orchestrator.InputError as exc:
            return input_error_response(exc)
        return Response(
            ExecutionDetailSerializer(new, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


@extend_schema(summary="Validate the workflow's stored definition", request=None, responses=ValidationResultSerializer)
@api_view(["POST"])
def validate_workflow(request, pk: int):
    workflow = access_workflow(request.user, pk, "view")
    definition = (
        request.data.get("definition")
        if isinstance(request.data, dict) and "definition" in request.data
        else workflow.definition
    )
    problems = validate(definition)
    return Response({"valid": not problems, "problems": [p.as_dict() for p in problems]})


@extend_schema(
    summary="Start a run of the workflow", request=RunRequestSerializer, responses={201: ExecutionDetailSerializer}
)
@api_view(["POST"])
def run_workflow(request, pk: int):
    workflow = access_workflow(request.user, pk, "change")
    roles.require_capability(request.user, roles.RUN_WORKFLOWS)
    if not workflow.is_active:
        return Response(
            {"detail": "This workflow is inactive; activate it to run it.", "code": "inactive"},
            status=status.HTTP_409_CONFLICT,
        )
    body = RunRequestSerializer(data=request.data if isinstance(request.data, dict) else {"input": request.data})
    body.is_valid(raise_exception=True)
    try:
        execution = orchestrator.start_execution(
            workflow, body.validated_data.get("input") or {}, acting_user=request.user, trigger="api"
        )
    except DefinitionError as exc:
        return definition_error_response(exc)
    except orchestrator.InputError as exc:
        return input_error_response(exc)
    return Response(
        ExecutionDetailSerializer(execution, context={"request": request}).data, status=status.HTTP_201_CREATED
    )


@extend_schema(summary="The JSON Schema of a workflow definition (format_version 1)", responses={200: dict})
@api_view(["GET"])
@permission_classes([AllowAny])
def definition_schema(request):
    return Response(published_schema())
