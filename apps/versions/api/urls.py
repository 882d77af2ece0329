from django.urls import path, re_path

from . import views

urlpatterns = [
    path("workflows/<int:pk>/versions/", views.version_list, name="workflow-versions"),
    re_path(r"^workflows/(?P<pk>[0-9]+)/versions/diff/?$", views.version_diff, name="workflow-version-diff"),
    path("workflows/<int:pk>/versions/<int:vid>/", views.version_detail, name="workflow-version-detail"),
    re_path(
        r"^workflows/(?P<pk>[0-9]+)/versions/(?P<vid>[0-9]+)/restore/?$",
        views.version_restore,
        name="workflow-version-restore",
    ),
]
