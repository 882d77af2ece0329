from django.apps import AppConfig


class VersionsConfig(AppConfig):
    name = "apps.versions"
    label = "versions"

    def ready(self) -> None:
        from apps.executions.engine import (
            hooks,
        )  # in ready(): the engine imports models, loadable once the app registry is ready

        from .services import (
            workflow_definition_at,
        )  # in ready(): it imports models, loadable once the app registry is ready

        hooks.register("workflow_version", workflow_definition_at)
