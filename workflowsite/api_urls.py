"""The REST API, version 1. Each app contributes its routes."""

from django.urls import include, path

app_name = "api"

urlpatterns = [
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
