"""The REST API, version 1. Each app contributes its routes."""

from django.urls import include, path

app_name = "api"

urlpatterns = [
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.workflows.api.urls")),
    path("", include("apps.executions.api.urls")),
]
