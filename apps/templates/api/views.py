from __future__ import annotations

import django_filters
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import filters, status, viewsets
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import action, api_view
from rest_framework.exceptions import ValidationError as APIValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.types import account_of
from apps.sharing.api.views import shares_endpoints
from apps.sharing.services import access_workflow
from apps.sharing.shares import has_level
from apps.templates import services
from apps.templates.models import Category, WorkflowTemplate
from apps.versions.api.views import VersionSerializer
from apps.versions.services import summary_counts

from .serializers import (
    CreatedWorkflowSerializer,
    InstantiateSerializer,
    SaveAsTemplateSerializer,
    TemplateReviewSerializer,
    WorkflowTemplateSerializer,
)


class NullsLastOrderingFilter(filters.OrderingFilter):
    """?ordering=-rating puts templates without reviews last, not first (Postgres sorts NULL high)."""

    def filter_queryset(self, request, queryset, view):
        ordering = self.get_ordering(request, queryset, view)
        if not ordering:
            return queryset
        terms = [F(t[1:]).desc(nulls_last=True) if t.startswith("-") else F(t).asc(nulls_last=True) for t in ordering]
        return queryset.order_by(*terms)


class TemplateFilter(django_filters.FilterSet):
    category = django_filters.ChoiceFilter(choices=Category.choices)
    tag = django_filters.CharFilter(method="filter_tag", help_text="Only templates carrying this tag.")
    q = django_filters.CharFilter(method="filter_text", help_text="Text in the name, description or tags.")
    is_public = django_filters.BooleanFilter()

    class Meta:
        model = WorkflowTemplate
        fields = ["category", "tag", "q", "is_public"]

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tags__contains=[value])

    def filter_text(self, queryset, name, value):
        return queryset.filter(
            Q(name__icontains=value)
            | Q(description__icontains=value)
            | Q(slug__icontains=value)
            | Q(tags__icontains=value)
        )


@extend_schema_view(
    list=extend_schema(summary="List the templates you can see (public, yours, shared with you)"),
    create=extend_schema(summary="Create a template (you become its owner)"),
    retrieve=extend_schema(summary="Get one template with its usage and success rate"),
    update=extend_schema(summary="Replace a template (needs edit permission)"),
    partial_update=extend_schema(summary="Update some fields of a template (needs edit permission)"),
    destroy=extend_schema(summary="Delete a template (needs admin permission)"),
)
class WorkflowTemplateViewSet(viewsets.ModelViewSet):
    serializer_class = WorkflowTemplateSerializer
    filterset_class = TemplateFilter
    search_fields = ["name", "slug", "description"]
    filter_backends = [DjangoFilterBackend, filters.SearchFilter, NullsLastOrderingFilter]
    ordering_fields = ["name", "created_at", "updated_at", "usage_count", "rating", "review_count"]
    ordering = ["name"]

    def get_queryset(self):
        return services.visible_templates(self.request.user).select_related("owner").with_stats()

    def get_object(self):
        level = "view"
        if self.request.method not in SAFE_METHODS and self.action not in ("instantiate", "reviews"):
            level = "admin" if self.request.method == "DELETE" else "change"
        template = services.access_template(self.request.user, self.kwargs["pk"], level)
        return self.get_queryset().get(pk=template.pk)

    def perform_destroy(self, instance):
        services.delete_template(instance, acting_user=self.request.user)

    @extend_schema(
        summary="Make a workflow you own from this template",
        request=InstantiateSerializer,
        responses={201: CreatedWorkflowSerializer},
    )
    @action(detail=True, methods=["post"])
    def instantiate(self, request: Request, pk=None) -> Response:
        template = self.get_object()
        params = InstantiateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        workflow = services.instantiate_template(
            template, user=account_of(request), name=params.validated_data.get("name")
        )
        return Response(
            {
                "id": workflow.pk,
                "name": workflow.name,
                "slug": workflow.slug,
                "url": f"/api/v1/workflows/{workflow.pk}/",
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        methods=["GET"],
        summary="The template's reviews, newest first",
        responses={200: TemplateReviewSerializer(many=True)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Rate (1-5) and review a template you made a workflow from; posting again replaces your review",
        request=TemplateReviewSerializer,
        responses={201: TemplateReviewSerializer},
    )
    @extend_schema(methods=["DELETE"], summary="Remove your review", request=None, responses={204: None})
    @action(detail=True, methods=["get", "post", "delete"], pagination_class=None, filter_backends=[])
    def reviews(self, request: Request, pk=None) -> Response:
        template = services.access_template(account_of(request), pk)
        if request.method == "GET":
            return Response(TemplateReviewSerializer(template.reviews.select_related("user"), many=True).data)
        if request.method == "DELETE":
            services.delete_review(template, user=account_of(request))
            return Response(status=status.HTTP_204_NO_CONTENT)
        params = TemplateReviewSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            review = services.review_template(template, user=account_of(request), **params.validated_data)
        except ValidationError as exc:
            raise APIValidationError(exc.message_dict) from None
        return Response(TemplateReviewSerializer(review).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="Save a workflow you can see as a new private template",
    request=SaveAsTemplateSerializer,
    responses={201: WorkflowTemplateSerializer},
)
@api_view(["POST"])
def save_as_template(request: Request, pk: int) -> Response:
    workflow = access_workflow(request.user, pk, "view")
    params = SaveAsTemplateSerializer(data=request.data)
    params.is_valid(raise_exception=True)
    template = services.save_workflow_as_template(workflow, user=account_of(request), **params.validated_data)
    template = services.visible_templates(request.user).with_stats().get(pk=template.pk)
    return Response(
        WorkflowTemplateSerializer(template, context={"request": request}).data, status=status.HTTP_201_CREATED
    )


#
# Template history
#


@extend_schema(summary="List a template's versions, newest first", responses=VersionSerializer(many=True))
@api_view(["GET"])
def template_version_list(request: Request, pk: int) -> Response:
    template = services.access_template(account_of(request), pk)
    versions = list(services.template_versions(template))
    numbers = {v.pk: len(versions) - i for i, v in enumerate(versions)}
    return Response(VersionSerializer(versions, many=True, context={"numbers": numbers}).data)


@extend_schema(
    summary="Diff two versions of a template: fields, and nodes and edges added, removed, changed",
    parameters=[
        OpenApiParameter("from", OpenApiTypes.INT, required=True, description="The older version id."),
        OpenApiParameter("to", OpenApiTypes.INT, required=True, description="The newer version id."),
    ],
    responses=OpenApiTypes.OBJECT,
)
@api_view(["GET"])
def template_version_diff(request: Request, pk: int) -> Response:
    template = services.access_template(account_of(request), pk)
    errors = {
        key: ["A version id is required."]
        for key in ("from", "to")
        if not str(request.query_params.get(key, "")).isdigit()
    }
    if errors:
        raise APIValidationError(errors)
    old = services.get_template_version(template, request.query_params["from"])
    new = services.get_template_version(template, request.query_params["to"])
    diff = services.diff_template_versions(old, new)
    diff["summary"] = summary_counts(diff)
    return Response(diff)


@extend_schema(
    summary="Restore a version of a template (records a new version; needs edit permission)",
    request=None,
    responses={
        201: inline_serializer(
            "RestoredTemplateVersion", {"version": VersionSerializer(), "template": drf_serializers.IntegerField()}
        )
    },
)
@api_view(["POST"])
def template_version_restore(request: Request, pk: int, vid: int) -> Response:
    template = services.access_template(account_of(request), pk, "change")
    version = services.get_template_version(template, vid)
    template = services.restore_template_version(template, version, acting_user=account_of(request))
    newest = services.template_versions(template).first()
    return Response(
        {"template": template.pk, "version": VersionSerializer(newest).data}, status=status.HTTP_201_CREATED
    )


#
# Shares (the endpoints are apps.sharing's)
#


def _fetch_template(user, pk, level):
    template = services.access_template(user, pk, "view")
    if level != "view" and not has_level(user, template, level):
        raise PermissionDenied(f"You need the '{level}' permission on this template.")
    return template


template_shares, template_share = shares_endpoints(_fetch_template, "template")
