from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts and security"

    def ready(self) -> None:
        from . import schema, signals  # noqa: F401  (audit handlers; OpenAPI auth extension)
