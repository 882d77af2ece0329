from django.urls import path

from . import views

app_name = "executions"

urlpatterns = [
    path("", views.execution_list, name="list"),
    path("<int:pk>/", views.execution_detail, name="detail"),
    path("<int:pk>/live/", views.execution_live, name="live"),
    path("<int:pk>/steps/<int:step_id>/", views.step_detail, name="step"),
    path("<int:pk>/dynamic/<str:node_id>/", views.execution_dynamic, name="dynamic"),
    path("<int:pk>/dynamic/<str:node_id>/items/<str:item_id>/", views.execution_dynamic_item, name="dynamic-item"),
    path("<int:pk>/cancel/", views.execution_cancel, name="cancel"),
    path("<int:pk>/retry/", views.execution_retry, name="retry"),
    path("<int:pk>/pin/", views.execution_pin, name="pin"),
    path("<int:pk>/pause/", views.execution_pause, name="pause"),
    path("<int:pk>/signal/", views.execution_signal, name="signal"),
    path("<int:pk>/retry-failed/", views.execution_retry_failed, name="retry-failed"),
    path("<int:pk>/retry-with-changes/", views.retry_with_changes, name="retry-with-changes"),
    path("<int:pk>/replay/", views.replay, name="replay"),
    path("<int:pk>/replay.json", views.replay_export, name="replay-export"),
]
