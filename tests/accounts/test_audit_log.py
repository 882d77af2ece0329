"""The audit log records logins, failed logins, logouts and API key changes."""

from __future__ import annotations

import pytest

from apps.accounts.models import AuditLog
from apps.accounts.services import create_api_key

pytestmark = pytest.mark.django_db


def _actions() -> list[str]:
    return list(AuditLog.objects.order_by("pk").values_list("action", flat=True))


def test_a_session_login_is_recorded_with_user_and_address(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "alice-password-1"}, REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 302
    row = AuditLog.objects.get(action=AuditLog.Action.LOGIN)
    assert row.actor == alice
    assert row.username == "alice"
    assert row.ip_address == "192.0.2.7"


def test_a_failed_login_is_recorded_with_the_username_tried_and_no_password(client, alice):
    client.post("/accounts/login/", {"username": "alice", "password": "wrong-password"})
    row = AuditLog.objects.get(action=AuditLog.Action.LOGIN_FAILED)
    assert row.actor is None
    assert row.username == "alice"
    assert "wrong-password" not in str(row.detail)


def test_a_failed_token_login_is_recorded(anon_api, alice):
    anon_api.post("/api/v1/auth/token", {"username": "alice", "password": "nope"})
    assert AuditLog.objects.filter(action=AuditLog.Action.LOGIN_FAILED, username="alice").count() == 1


def test_a_token_login_is_recorded(anon_api, alice):
    anon_api.post("/api/v1/auth/token", {"username": "alice", "password": "alice-password-1"})
    row = AuditLog.objects.get(action=AuditLog.Action.LOGIN)
    assert row.actor == alice and row.detail == {"via": "token"}


def test_a_logout_is_recorded(client, alice):
    client.force_login(alice)
    response = client.post("/accounts/logout/")
    assert response.status_code in (200, 302)
    assert AuditLog.objects.get(action=AuditLog.Action.LOGOUT).actor == alice


def test_creating_and_revoking_a_key_through_the_api_is_recorded(api, alice):
    prefix = api.post("/api/v1/api-keys/", {"name": "ci"}).json()["prefix"]
    api.post(f"/api/v1/api-keys/{prefix}/revoke")
    assert _actions() == [AuditLog.Action.API_KEY_CREATED, AuditLog.Action.API_KEY_REVOKED]
    for row in AuditLog.objects.all():
        assert row.actor == alice
        assert row.target == f"api key {prefix}"


def test_the_audit_row_never_holds_the_key(alice):
    _, key = create_api_key(alice, "secret-holder")
    row = AuditLog.objects.get(action=AuditLog.Action.API_KEY_CREATED)
    assert key.split(".", 1)[1] not in f"{row.target} {row.detail}"
