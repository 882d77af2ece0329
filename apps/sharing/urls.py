from django.urls import path

from . import views

app_name = "sharing"

urlpatterns = [
    path("workflows/<int:pk>/share/", views.workflow_share, name="workflow"),
]
