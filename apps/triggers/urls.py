from django.urls import path

from . import views

app_name = "triggers"

urlpatterns = [
    path("workflows/<int:pk>/triggers/", views.workflow_triggers, name="workflow-triggers"),
]
