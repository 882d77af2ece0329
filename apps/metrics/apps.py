from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "apps.metrics"
    label = "metrics"
    verbose_name = "Metrics and operations"

    def ready(self) -> None:
        from apps.executions.engine import hooks

        from . import correlation  # (celery signal handlers carrying the correlation id)

        hooks.register("correlation_id", correlation.get_correlation_id)
