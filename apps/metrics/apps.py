from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "apps.metrics"
    label = "metrics"
    verbose_name = "Metrics and operations"

    def ready(self) -> None:
        from . import correlation  # noqa: F401  (celery signal handlers carrying the correlation id)
