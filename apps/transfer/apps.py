from django.apps import AppConfig


class TransferConfig(AppConfig):
    """Import and export of workflows as JSON documents (no models of its own)."""

    name = "apps.transfer"
    label = "transfer"
    verbose_name = "Import / export"
