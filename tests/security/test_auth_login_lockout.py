"""Password guessing on the login pages is cut off: after WB_LOGIN_FAILURE_LIMIT failures for one
username from one address, that pair is locked out with a clear message; an operator unlocks it."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt

from apps.accounts.models import AuditLog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 3


def _fail(client, path: str, username: str = "alice", ip: str = "203.0.113.7", **headers):
    return client.post(path, {"username": username, "password": "wrong-guess"}, REMOTE_ADDR=ip, **headers)


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_the_login_pages_lock_out_after_repeated_failures(client, alice, path):
    for _ in range(2):
        assert _fail(client, path).status_code == 200
    locked = _fail(client, path)
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    # Even the right password is refused now, from that address.
    right = client.post(path, {"username": "alice", "password": "alice-password-1"}, REMOTE_ADDR="203.0.113.7")
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AuditLog.objects.filter(action="login_locked_out", username="alice").exists()


def test_the_lockout_is_per_username_and_address(client, alice, bob):
    for _ in range(3):
        _fail(client, "/accounts/login/")
    ok = client.post("/accounts/login/", {"username": "alice", "password": "alice-password-1"}, REMOTE_ADDR="198.51.100.2")
    assert ok.status_code == 302
    client.logout()
    other = client.post("/accounts/login/", {"username": "bob", "password": "bob-password-1"}, REMOTE_ADDR="203.0.113.7")
    assert other.status_code == 302


def test_an_operator_unlocks_from_the_admin(client, alice, admin_user):
    for _ in range(3):
        _fail(client, "/accounts/login/")
    attempt = AccessAttempt.objects.get(username="alice")
    admin = client.__class__()
    admin.force_login(admin_user)
    page = admin.get("/admin/axes/accessattempt/")
    assert page.status_code == 200 and "alice" in page.content.decode()
    assert admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"}).status_code == 302
    ok = client.post("/accounts/login/", {"username": "alice", "password": "alice-password-1"}, REMOTE_ADDR="203.0.113.7")
    assert ok.status_code == 302


def test_the_token_endpoint_counts_failures_too(anon_api, alice):
    for _ in range(3):
        anon_api.post("/api/v1/auth/token", {"username": "alice", "password": "nope"}, format="json", REMOTE_ADDR="203.0.113.9")
    response = anon_api.post("/api/v1/auth/token", {"username": "alice", "password": "alice-password-1"}, format="json", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 429
    assert "Too many failed logins" in response.json()["detail"] and "token" not in response.json()


def test_the_jwt_endpoint_counts_failures_too(anon_api, alice):
    for _ in range(3):
        anon_api.post("/api/v1/auth/jwt", {"username": "alice", "password": "nope"}, format="json", REMOTE_ADDR="203.0.113.9")
    response = anon_api.post("/api/v1/auth/jwt", {"username": "alice", "password": "alice-password-1"}, format="json", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 429 and "access" not in response.json()
