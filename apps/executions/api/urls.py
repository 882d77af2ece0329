from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
# Accept both /executions/1/state and /executions/1/state/ (DRF takes only a bool here).
router.trailing_slash = "/?"
router.register("executions", views.ExecutionViewSet, basename="execution")

urlpatterns = [
    path("workflows/<int:pk>/validate", views.validate_workflow, name="workflow-validate"),
    path("workflows/<int:pk>/runs", views.run_workflow, name="workflow-run"),
    path("schema/workflow-definition.json", views.definition_schema, name="definition-schema"),
    *router.urls,
]
