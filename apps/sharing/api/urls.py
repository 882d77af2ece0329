from django.urls import path

from . import views

urlpatterns = [
    path("workflows/<int:pk>/shares/", views.workflow_shares, name="workflow-shares"),
    path("workflows/<int:pk>/shares/<str:share_id>/", views.workflow_share, name="workflow-share"),
]
