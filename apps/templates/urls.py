from django.urls import path

from . import views

app_name = "workflow_templates"

urlpatterns = [
    path("templates/", views.library, name="library"),
    path("templates/<int:pk>/", views.detail, name="detail"),
    path("templates/<int:pk>/graph.svg", views.graph, name="graph"),
    path("templates/<int:pk>/use/", views.use, name="use"),
    path("templates/<int:pk>/review/", views.review, name="review"),
    path("templates/<int:pk>/share/", views.share, name="share"),
    path("templates/<int:pk>/versions/", views.history, name="history"),
    path("templates/<int:pk>/versions/diff.svg", views.history_graph, name="history-graph"),
    path("templates/<int:pk>/versions/<int:vid>/restore/", views.restore, name="restore"),
    path("workflows/<int:pk>/save-as-template/", views.save_as, name="save-as"),
]
