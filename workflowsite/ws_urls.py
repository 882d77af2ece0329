"""Websocket routes; each app contributes its consumers."""

websocket_urlpatterns: list = []
