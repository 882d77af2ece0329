"""The REST API, version 1. Each app contributes its routes."""

from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

app_name = "api"

# What GET /api/v1/ lists: every collection an integration starts from (URL name -> label).
_ROOT = {
    "workflows": "api:workflow-list",
    "executions": "api:execution-list",
    "templates": "api:template-list",
    "work-items": "api:work-item-list",
    "api-keys": "api:api-key-list",
    "credentials": "api:credential-list",
    "activity": "api:activity",
    "notifications": "api:notifications",
    "metrics-summary": "api:metrics-summary",
    "workflow-definition-schema": "api:definition-schema",
}


@extend_schema(exclude=True)
@api_view(["GET"])
def api_root(request: Request, format=None) -> Response:
    """The API's entry point: links to each collection, the docs and the schema."""
    links = {name: reverse(url_name, request=request, format=format) for name, url_name in _ROOT.items()}
    links["docs"] = request.build_absolute_uri("/api/docs/")
    links["openapi-schema"] = request.build_absolute_uri("/api/schema/")
    return Response(links)


urlpatterns = [
    path("", api_root, name="api-root"),
    path("", include("apps.accounts.api.urls")),
    # Collaboration routes first: "workflows/export/" must not be read as a workflow id.
    path("", include("apps.transfer.api.urls")),
    path("", include("apps.templates.api.urls")),
    path("", include("apps.versions.api.urls")),
    path("", include("apps.sharing.api.urls")),
    path("", include("apps.comments.api.urls")),
    path("", include("apps.workflows.api.urls")),
    path("", include("apps.executions.api.urls")),
    path("", include("apps.connectors.api.urls")),
    path("", include("apps.metrics.api.urls")),
    path("", include("apps.worklist.api.urls")),
    path("", include("apps.triggers.api.urls")),
]
