from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.metrics import views as metrics_views
from apps.workflows import views as workflow_views

urlpatterns = [
    # The landing page for a signed-in user is their workflow list.
    path("", workflow_views.workflow_list, name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("workflowsite.api_urls", namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("workflows/", include("apps.workflows.urls")),
    path("executions/", include("apps.executions.urls")),
    # Collaboration pages (templates, versions, shares, comments, activity, import/export).
    path("", include("apps.transfer.urls")),
    path("", include("apps.templates.urls")),
    path("", include("apps.versions.urls")),
    path("", include("apps.sharing.urls")),
    path("", include("apps.comments.urls")),
    path("", include("apps.accounts.urls")),
    # Metrics: the dashboard (/metrics/) and, without the slash, the Prometheus scrape endpoint.
    path("", include("apps.metrics.urls")),
    path("metrics", metrics_views.prometheus_metrics, name="prometheus-metrics"),
    path("", include("apps.worklist.urls")),
    path("", include("apps.triggers.urls")),
]
