from django.urls import path
from rest_framework.routers import SimpleRouter

from .editing import edit_workflow
from .views import WorkflowViewSet

router = SimpleRouter()
router.register("workflows", WorkflowViewSet, basename="workflow")
urlpatterns = [
    path("workflows/<int:pk>/edits", edit_workflow, name="workflow-edits"),
    *router.urls,
]
