from django.apps import AppConfig


class TemplatesConfig(AppConfig):
    name = "apps.templates"
    label = "workflow_templates"
    verbose_name = "Workflow templates"
