from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "apps.workflows"
    label = "workflows"

    def ready(self) -> None:
        # The compiler is pure data: it reads shared subflows through this resolver.
        from .subflows import register

        register()
