from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from .views import WorkflowTemplateViewSet, save_as_template

router = SimpleRouter()
router.register("templates", WorkflowTemplateViewSet, basename="template")
urlpatterns = [
    re_path(r"^workflows/(?P<pk>[0-9]+)/save-as-template/?$", save_as_template, name="workflow-save-as-template"),
    *router.urls,
]
