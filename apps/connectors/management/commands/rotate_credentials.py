from django.core.management.base import BaseCommand

from apps.connectors import services


class Command(BaseCommand):
    help = "Re-encrypt every stored credential with the first key of CREDENTIALS_KEY."

    def handle(self, *args, **options) -> None:
        count = services.rotate_all()
        self.stdout.write(f"re-encrypted {count} credential(s)")
