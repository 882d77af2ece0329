from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from .views import (
    WorkflowTemplateViewSet,
    save_as_template,
    template_share,
    template_shares,
    template_version_diff,
    template_version_list,
    template_version_restore,
)

router = SimpleRouter()
router.register("templates", WorkflowTemplateViewSet, basename="template")
urlpatterns = [
    re_path(r"^workflows/(?P<pk>[0-9]+)/save-as-template/?$", save_as_template, name="workflow-save-as-template"),
    re_path(r"^templates/(?P<pk>[0-9]+)/versions/?$", template_version_list, name="template-versions"),
    re_path(r"^templates/(?P<pk>[0-9]+)/versions/diff/?$", template_version_diff, name="template-version-diff"),
    re_path(
        r"^templates/(?P<pk>[0-9]+)/versions/(?P<vid>[0-9]+)/restore/?$",
        template_version_restore,
        name="template-version-restore",
    ),
    path("templates/<int:pk>/shares/", template_shares, name="template-shares"),
    path("templates/<int:pk>/shares/<str:share_id>/", template_share, name="template-share"),
    *router.urls,
]
