from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from . import subflows
from .editing import edit_workflow
from .views import WorkflowViewSet

router = SimpleRouter()
router.register("workflows", WorkflowViewSet, basename="workflow")
urlpatterns = [
    re_path(r"^subflows/?$", subflows.subflow_list, name="subflow-list"),
    re_path(r"^subflows/(?P<slug>[a-z0-9_\-]+)/?$", subflows.subflow_detail, name="subflow-detail"),
    re_path(r"^subflows/(?P<slug>[a-z0-9_\-]+)/versions/?$", subflows.subflow_publish, name="subflow-publish"),
    path("workflows/<int:pk>/edits", edit_workflow, name="workflow-edits"),
    *router.urls,
]
