from django.urls import path

from . import views

app_name = "worklist"

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/availability/", views.availability, name="availability"),
    path("inbox/<int:pk>/<str:action>", views.act, name="act"),
]
