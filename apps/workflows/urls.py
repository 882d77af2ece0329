from django.urls import path

from . import views

app_name = "workflows"

urlpatterns = [
    path("", views.workflow_list, name="list"),
    path("new/", views.workflow_create, name="create"),
    path("help/errors/", views.error_help, name="help"),
    path("<int:pk>/", views.workflow_detail, name="detail"),
    path("<int:pk>/graph.svg", views.workflow_graph, name="graph"),
    path("<int:pk>/edit/", views.workflow_edit, name="edit"),
    path("<int:pk>/canvas/", views.workflow_canvas, name="canvas"),
    path("<int:pk>/settings/", views.workflow_settings, name="settings"),
    path("<int:pk>/json/", views.definition_json, name="json"),
    path("<int:pk>/run/", views.workflow_run, name="run"),
    path("<int:pk>/nodes/add/", views.node_add, name="node-add"),
    # No trailing slash: the graph links nodes as <prefix><node id>.
    path("<int:pk>/nodes/<str:node_id>", views.node_edit, name="node"),
    path("<int:pk>/nodes/<str:node_id>/delete/", views.node_delete, name="node-delete"),
    path("<int:pk>/edges/add/", views.edge_add, name="edge-add"),
    path("<int:pk>/edges/delete/", views.edge_delete, name="edge-delete"),
]
