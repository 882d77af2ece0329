from django.urls import path

from . import views

app_name = "transfer"

urlpatterns = [
    path("workflows/import/", views.import_page, name="import"),
    path("workflows/export/", views.export_download, name="export"),
]
