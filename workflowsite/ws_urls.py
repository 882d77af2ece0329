"""Websocket routes; each app contributes its consumers."""

from django.urls import path

from apps.executions.consumers import ExecutionConsumer

websocket_urlpatterns: list = [
    # Channels routes with Django's path(), whose stub accepts only HTTP views.
    path("ws/executions/<int:pk>/", ExecutionConsumer.as_asgi()),  # type: ignore[arg-type]
]
