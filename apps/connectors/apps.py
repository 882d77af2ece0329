from __future__ import annotations

import importlib
import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("workflow.connectors")


class ConnectorsConfig(AppConfig):
    name = "apps.connectors"
    label = "connectors"
    verbose_name = "Connectors"

    def ready(self) -> None:
        from apps.executions.engine import (
            hooks,
        )  # in ready(): the engine imports models, loadable once the app registry is ready
        from apps.workflows.definition.mapping import apply  # in ready(): registered as an engine hook here

        # Registers http.request, notify.*, map and ai.complete.
        from . import activities  # noqa: F401 - in ready(): registering the activities imports models

        hooks.register("map_output", apply)

        # Saving a definition that names a credential needs the right to use that credential.
        from apps.workflows.services import (
            register_definition_check,
        )  # in ready(): it imports models, loadable once the app registry is ready

        from .services import (
            check_credential_references,
        )  # in ready(): it imports models, loadable once the app registry is ready

        register_definition_check(check_credential_references)

        # Operators may name in-house activity modules that are not packaged with an
        # entry point; importing one registers its activities (see docs/integrations.md).
        for module in getattr(settings, "WB_ACTIVITY_MODULES", []):
            try:
                importlib.import_module(module)
            except Exception:
                logger.exception("could not import activity module %s (WB_ACTIVITY_MODULES)", module)
