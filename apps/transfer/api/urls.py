from django.urls import path, re_path

from . import views

urlpatterns = [
    re_path(r"^workflows/export/?$", views.export_view, name="workflow-export"),
    re_path(r"^workflows/import/?$", views.import_view, name="workflow-import"),
    path("schema/export.json", views.export_schema, name="export-schema"),
]
