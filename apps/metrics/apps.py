from django.apps import AppConfig
from django.conf import settings


class MetricsConfig(AppConfig):
    name = "apps.metrics"
    label = "metrics"
    verbose_name = "Metrics and operations"

    def ready(self) -> None:
        from apps.executions import worker  # in ready(): it imports models, loadable only now
        from apps.executions.engine import hooks  # in ready(): the engine imports models

        from . import collect, correlation  # in ready(): models; correlation connects celery signal handlers

        hooks.register("correlation_id", correlation.get_correlation_id)
        worker.register_background_job("metrics", collect.collect_recent, settings.WB_METRICS_INTERVAL)
