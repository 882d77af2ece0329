"""Work items: the inbox and what people do with an item."""

from __future__ import annotations

import django_filters
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.response import Response

from apps.accounts.types import account_of

from .. import services
from ..choices import WorkItemState
from ..models import WorkItem
from .serializers import CompleteSerializer, ReassignSerializer, WorkItemSerializer, WorkProfileSerializer


def error_response(exc: services.WorkItemError) -> Response:
    body: dict = {"detail": exc.message}
    if exc.field:
        body[exc.field] = [exc.message]
    return Response(body, status=exc.status)


class WorkItemFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=WorkItemState.choices)
    workflow = django_filters.NumberFilter(field_name="workflow_id")
    execution = django_filters.NumberFilter(field_name="execution_id")

    class Meta:
        model = WorkItem
        fields = ["state", "workflow", "execution"]


_conflict = OpenApiResponse(description="Someone got there first, or the item is not in a state that allows it")


@extend_schema_view(
    list=extend_schema(
        summary="Your inbox: items offered to you (directly or through a team) and items you hold; ?all=1 lists "
        "every item you may see"
    ),
    retrieve=extend_schema(summary="A work item (offered to you, held by you, or of a workflow you administer)"),
)
class WorkItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = WorkItemSerializer
    filterset_class = WorkItemFilter
    ordering_fields = ["created_at", "due_at"]
    ordering = ["-created_at"]
    search_fields = ["title"]
    queryset = WorkItem.objects.none()  # for the schema generator

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WorkItem.objects.none()
        user = self.request.user
        qs = (
            services.visible_work_items(user)
            if self.request.query_params.get("all") in ("1", "true")
            else services.inbox(user)
        )
        return qs.select_related("workflow", "claimed_by").prefetch_related("offered_users", "offered_groups")

    def get_object(self) -> WorkItem:
        return services.access_work_item(account_of(self.request), self.kwargs["pk"])

    def _act(self, fn, *args, **kwargs) -> Response:
        try:
            item = fn(*args, **kwargs)
        except services.WorkItemError as exc:
            return error_response(exc)
        try:
            item = services.access_work_item(account_of(self.request), item.pk)
        except Http404:
            pass  # still answer with what the caller did
        return Response(WorkItemSerializer(item, context={"request": self.request}).data)

    @extend_schema(
        summary="Claim an offered item (exclusive: a second claim gets 409)",
        request=None,
        responses={200: WorkItemSerializer, 403: OpenApiResponse(description="Not offered to you"), 409: _conflict},
    )
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        return self._act(services.claim_work_item, self.get_object(), request.user)

    @extend_schema(
        summary="Give a held item back to everyone it is offered to",
        request=None,
        responses={200: WorkItemSerializer, 409: _conflict},
    )
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        return self._act(services.release_work_item, self.get_object(), request.user)

    @extend_schema(
        summary="Mark a claimed item as started", request=None, responses={200: WorkItemSerializer, 409: _conflict}
    )
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._act(services.start_work_item, self.get_object(), request.user)

    @extend_schema(
        summary="Decide a held item; the run resumes with the decision",
        request=CompleteSerializer,
        responses={
            200: WorkItemSerializer,
            400: OpenApiResponse(description="decision is not one of the outcomes"),
            409: _conflict,
        },
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        item = self.get_object()
        serializer = CompleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._act(
            services.complete_work_item,
            item,
            request.user,
            serializer.validated_data["decision"],
            serializer.validated_data["comment"],
        )

    @extend_schema(
        summary="Turn the offer down: it stays with the other eligible people",
        request=None,
        responses={200: WorkItemSerializer, 409: _conflict},
    )
    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None):
        return self._act(services.decline_work_item, self.get_object(), request.user)

    @extend_schema(
        summary="Hand the item to a user (workflow admins and staff)",
        request=ReassignSerializer,
        responses={200: WorkItemSerializer, 403: OpenApiResponse(description="Not a workflow admin"), 409: _conflict},
    )
    @action(detail=True, methods=["post"])
    def reassign(self, request, pk=None):
        item = self.get_object()
        serializer = ReassignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._act(services.reassign_work_item, item, serializer.validated_data["user"], acting_user=request.user)


@extend_schema(
    methods=["GET"],
    summary="Your work profile: availability, workload limit, capabilities, open items",
    responses={200: WorkProfileSerializer},
)
@extend_schema(
    methods=["PATCH"],
    summary="Change your availability or workload limit (capabilities are set by staff)",
    request=WorkProfileSerializer,
    responses={200: WorkProfileSerializer},
)
@api_view(["GET", "PATCH"])
def work_profile(request):
    if request.method == "PATCH":
        serializer = WorkProfileSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.update_work_profile(request.user, **serializer.validated_data)
    return Response(WorkProfileSerializer(services.work_profile(request.user)).data)
