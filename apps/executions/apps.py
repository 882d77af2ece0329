from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "apps.executions"
    label = "executions"
    verbose_name = "Executions"

    def ready(self) -> None:
        from . import worker  # noqa: F401  (celery signal handlers)
        from .activities import builtin  # noqa: F401  (registers the built-in activities)
        from .activities.plugins import load_entry_points  # in ready(): entry-point activities import models

        load_entry_points()
