from django.urls import path

from . import views

app_name = "metrics"

urlpatterns = [
    path("metrics/", views.dashboard, name="dashboard"),
    path("metrics/workflow/<int:pk>/panel", views.workflow_panel, name="workflow-panel"),
]
