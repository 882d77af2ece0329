from django.urls import path

from . import views

app_name = "comments"

urlpatterns = [
    path("workflows/<int:pk>/comments/", views.workflow_comments, name="workflow-comments"),
    path("workflows/<int:pk>/activity/", views.workflow_activity, name="workflow-activity"),
    path("activity/", views.my_activity, name="activity"),
    path("notifications/", views.notifications, name="notifications"),
]
