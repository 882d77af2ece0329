from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.permissions import SAFE_METHODS

from apps.accounts import roles
from apps.sharing.services import access_workflow, visible_workflows
from apps.workflows import services
from apps.workflows.models import Workflow

from .serializers import WorkflowSerializer


class WorkflowFilter(django_filters.FilterSet):
    tag = django_filters.CharFilter(method="filter_tag", help_text="Only workflows carrying this tag.")
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Workflow
        fields = ["tag", "is_active"]

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tags__contains=[value])


@extend_schema_view(
    list=extend_schema(summary="List the workflows you can see"),
    create=extend_schema(summary="Create a workflow (you become its owner)"),
    retrieve=extend_schema(summary="Get one workflow"),
    update=extend_schema(summary="Replace a workflow (needs change permission)"),
    partial_update=extend_schema(summary="Update some fields of a workflow (needs change permission)"),
    destroy=extend_schema(summary="Delete a workflow (needs delete permission)"),
)
class WorkflowViewSet(viewsets.ModelViewSet):
    serializer_class = WorkflowSerializer
    filterset_class = WorkflowFilter
    search_fields = ["name", "slug", "description"]
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]

    def get_queryset(self):
        return visible_workflows(self.request.user).select_related("owner", "team")

    def get_object(self):
        perm = "view"
        if self.request.method not in SAFE_METHODS:
            perm = "delete" if self.request.method == "DELETE" else "change"
        return access_workflow(self.request.user, self.kwargs["pk"], perm)

    def create(self, request, *args, **kwargs):
        roles.require_capability(request.user, roles.CREATE_WORKFLOWS)
        return super().create(request, *args, **kwargs)

    def perform_destroy(self, instance):
        services.delete_workflow(instance, acting_user=self.request.user, request=self.request)
