from __future__ import annotations

import django_filters
from django.db.models import Q
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from apps.sharing.services import access_workflow
from apps.templates import services
from apps.templates.models import Category, WorkflowTemplate

from .serializers import (
    CreatedWorkflowSerializer,
    InstantiateSerializer,
    SaveAsTemplateSerializer,
    WorkflowTemplateSerializer,
)


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
            Q(name__icontains=value) | Q(description__icontains=value) | Q(slug__icontains=value) | Q(tags__icontains=value)
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
    ordering_fields = ["name", "created_at", "updated_at", "usage_count"]
    ordering = ["name"]

    def get_queryset(self):
        return services.visible_templates(self.request.user).select_related("owner").with_stats()

    def get_object(self):
        level = "view"
        if self.request.method not in SAFE_METHODS and self.action != "instantiate":
            level = "admin" if self.request.method == "DELETE" else "change"
        template = services.access_template(self.request.user, self.kwargs["pk"], level)
        return self.get_queryset().get(pk=template.pk)

    def perform_destroy(self, instance):
        services.delete_template(instance, acting_user=self.request.user)

    @extend_schema(summary="Make a workflow you own from this template", request=InstantiateSerializer, responses={201: CreatedWorkflowSerializer})
    @action(detail=True, methods=["post"])
    def instantiate(self, request: Request, pk=None) -> Response:
        template = self.get_object()
        params = InstantiateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        workflow = services.instantiate_template(template, user=request.user, name=params.validated_data.get("name"))
        return Response(
            {"id": workflow.pk, "name": workflow.name, "slug": workflow.slug, "url": f"/api/v1/workflows/{workflow.pk}/"},
            status=status.HTTP_201_CREATED,
        )


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
    template = services.save_workflow_as_template(workflow, user=request.user, **params.validated_data)
    template = services.visible_templates(request.user).with_stats().get(pk=template.pk)
    return Response(WorkflowTemplateSerializer(template, context={"request": request}).data, status=status.HTTP_201_CREATED)
