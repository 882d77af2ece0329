from django.urls import path

from . import views

urlpatterns = [
    path("workflows/<int:pk>/comments/", views.comment_list, name="workflow-comments"),
    path("workflows/<int:pk>/comments/<int:cid>/", views.comment_detail, name="workflow-comment"),
    path("workflows/<int:pk>/activity/", views.workflow_activity, name="workflow-activity"),
    path("activity/", views.activity_feed, name="activity"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/unread-count/", views.unread_count, name="notifications-unread-count"),
    path("notifications/read/", views.mark_read, name="notifications-read"),
    path("notifications/<int:nid>/read/", views.mark_one_read, name="notification-read"),
    path("notifications/preferences/", views.preferences, name="notification-preferences"),
]
