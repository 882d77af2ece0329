from django.apps import AppConfig


class TriggersConfig(AppConfig):
    name = "apps.triggers"
    label = "triggers"
    verbose_name = "Triggers: schedules, events, webhooks"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (schedules follow their workflow's is_active)
