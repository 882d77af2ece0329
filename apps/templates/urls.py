from django.urls import path

from . import views

app_name = "workflow_templates"

urlpatterns = [
    path("templates/", views.library, name="library"),
    path("templates/<int:pk>/", views.detail, name="detail"),
    path("templates/<int:pk>/graph.svg", views.graph, name="graph"),
    path("templates/<int:pk>/use/", views.use, name="use"),
    path("workflows/<int:pk>/save-as-template/", views.save_as, name="save-as"),
]
