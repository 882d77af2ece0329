"""`manage.py ensure_admin`: the first administrator, created once, password shown once."""

from __future__ import annotations

import stat
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("ensure_admin", *args, stdout=out)
    return out.getvalue()


def test_it_creates_admin_with_a_generated_password_kept_in_a_private_file(tmp_path, monkeypatch):
    monkeypatch.delenv("WB_ADMIN_USER", raising=False)
    monkeypatch.delenv("WB_ADMIN_PASSWORD", raising=False)
    secret = tmp_path / "admin-password"
    output = _run("--password-file", str(secret))
    password = secret.read_text().strip()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert password in output
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.check_password(password)


def test_a_second_run_does_not_show_the_password_again(tmp_path, monkeypatch):
    monkeypatch.delenv("WB_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("WB_ADMIN_USER", raising=False)
    secret = tmp_path / "admin-password"
    _run("--password-file", str(secret))
    password = secret.read_text().strip()
    output = _run("--password-file", str(secret))
    assert password not in output
    assert str(secret) in output
    assert User.objects.filter(username="admin").count() == 1


def test_it_takes_name_and_password_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WB_ADMIN_USER", "ops")
    monkeypatch.setenv("WB_ADMIN_PASSWORD", "a-long-ops-password")
    secret = tmp_path / "admin-password"
    output = _run("--password-file", str(secret))
    assert "a-long-ops-password" not in output
    assert not secret.exists()
    assert User.objects.get(username="ops").check_password("a-long-ops-password")
    monkeypatch.setenv("WB_ADMIN_PASSWORD", "a-newer-ops-password")
    assert "password updated" in _run()
    assert User.objects.get(username="ops").check_password("a-newer-ops-password")


def test_it_refuses_to_promote_an_existing_ordinary_user(alice, monkeypatch):
    monkeypatch.setenv("WB_ADMIN_USER", "alice")
    with pytest.raises(CommandError, match="not an active superuser"):
        _run()
    alice.refresh_from_db()
    assert not alice.is_superuser
