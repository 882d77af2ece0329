from django.urls import path

from . import views

app_name = "versions"

urlpatterns = [
    path("workflows/<int:pk>/versions/", views.history, name="history"),
    path("workflows/<int:pk>/versions/diff.svg", views.diff_graph, name="diff-graph"),
    path("workflows/<int:pk>/versions/<int:vid>/restore/", views.restore, name="restore"),
]
