"""Websocket routes; each app contributes its consumers."""

from django.urls import path

from apps.executions.consumers import ExecutionConsumer

websocket_urlpatterns: list = [
    path("ws/executions/<int:pk>/", ExecutionConsumer.as_asgi()),
]
