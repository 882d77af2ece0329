from django.apps import AppConfig
from django.db import models


class WorkflowsConfig(AppConfig):
    name = "apps.workflows"
    label = "workflows"

    def ready(self) -> None:
        # The compiler is pure data: it reads shared subflows through this resolver.
        from .subflows import register  # in ready(): it imports models, loadable once the app registry is ready

        register()

        # Every admin form for a model JSONField (definitions, trigger conditions, inputs, template
        # samples…) parses with jsontext's checks: Django's own lets 10,000 levels of nesting raise
        # RecursionError and "\u0000" reach PostgreSQL (500s for staff). The admin has no site-wide
        # setting for this: its defaults table serves admins registered from now on, and the ones
        # autodiscovery registered already (django.contrib.admin is ready before us) are updated.
        from django.contrib import admin  # in ready(): the admin site and its registry are complete only now
        from django.contrib.admin import options  # in ready(): importing the admin needs a ready app registry

        from .jsontext import JSONFormField  # in ready(): patched into the admin's defaults below

        override = {"form_class": JSONFormField}
        options.FORMFIELD_FOR_DBFIELD_DEFAULTS[models.JSONField] = override
        for model_admin in admin.site._registry.values():
            # A dict once ModelAdmin.__init__ has merged the defaults in; typed as the class attribute's Mapping.
            model_admin.formfield_overrides.setdefault(models.JSONField, {}).update(override)  # type: ignore[attr-defined]
