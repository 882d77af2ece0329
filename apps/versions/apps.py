from django.apps import AppConfig


class VersionsConfig(AppConfig):
    name = "apps.versions"
    label = "versions"
