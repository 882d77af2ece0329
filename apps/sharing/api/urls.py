from django.urls import path

from . import views

urlpatterns = [
    path("workflows/<int:pk>/shares/", views.workflow_shares, name="workflow-shares"),
    path("workflows/<int:pk>/shares/<str:share_id>/", views.workflow_share, name="workflow-share"),
    path("templates/<int:pk>/shares/", views.template_shares, name="template-shares"),
    path("templates/<int:pk>/shares/<str:share_id>/", views.template_share, name="template-share"),
]
