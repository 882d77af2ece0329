"""`manage.py ensure_admin`: make sure the first administrator exists (idempotent).

Username and password come from WB_ADMIN_USER / WB_ADMIN_PASSWORD. Without a
password, a new admin gets a generated one, printed once and written to
--password-file (mode 600) so later runs can say where it is.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


def write_secret(path: Path, text: str) -> None:
    """Write `text` to `path` readable by the owner only (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    os.chmod(path, 0o600)


class Command(BaseCommand):
    help = (
        "Create the admin user if missing (WB_ADMIN_USER / WB_ADMIN_PASSWORD; else 'admin' with a generated password)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password-file", type=Path, help="Where a generated password is kept (mode 600).")

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        username = os.environ.get("WB_ADMIN_USER") or "admin"
        password = os.environ.get("WB_ADMIN_PASSWORD") or ""
        password_file: Path | None = options["password_file"]
        user = User.objects.filter(username=username).first()

        if user is not None:
            if not user.is_superuser or not user.is_staff or not user.is_active:
                raise CommandError(f"WB_ADMIN_USER: user {username!r} exists but is not an active superuser")
            if password and not user.check_password(password):
                user.set_password(password)
                user.save(update_fields=["password"])
                self.stdout.write(f"admin: {username} (password updated from WB_ADMIN_PASSWORD)")
            elif password:
                self.stdout.write(f"admin: {username} (password from WB_ADMIN_PASSWORD)")
            elif password_file and password_file.exists():
                self.stdout.write(f"admin: {username} (generated password in {password_file})")
            else:
                self.stdout.write(f"admin: {username} (password unchanged)")
            return

        generated = not password
        if generated:
            password = secrets.token_urlsafe(18)
        User.objects.create_superuser(username=username, email="", password=password)
        if not generated:
            self.stdout.write(f"admin: created {username} (password from WB_ADMIN_PASSWORD)")
            return
        if password_file:
            write_secret(password_file, password)
        self.stdout.write(
            self.style.WARNING(
                f"admin: created {username} with password {password}\n"
                + (
                    f"       (shown once; kept in {password_file}, readable by you only)"
                    if password_file
                    else "       (shown once: store it now)"
                )
            )
        )
