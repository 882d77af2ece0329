from django.apps import AppConfig


class VersionsConfig(AppConfig):
    name = "apps.versions"
    label = "versions"

    def ready(self) -> None:
        from apps.executions.engine import hooks

        from .services import workflow_definition_at

        hooks.register("workflow_version", workflow_definition_at)
