"""API tokens are stored hashed, expire, and can be rotated and revoked; JWT access and refresh
tokens rotate, and a used or revoked refresh token is refused (issue 15)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import APIToken, AuditLog

pytestmark = pytest.mark.django_db
PASSWORD = {"username": "alice", "password": "alice-password-1"}


def _token(anon_api) -> str:
    response = anon_api.post("/api/v1/auth/token", PASSWORD, format="json")
    assert response.status_code == 200, response.content
    return response.json()["token"]


def _get(header: str) -> int:
    return APIClient().get("/api/v1/workflows/", HTTP_AUTHORIZATION=header).status_code


def test_the_token_is_not_stored_in_plain_text(anon_api, alice):
    key = _token(anon_api)
    with connection.cursor() as cursor:
        cursor.execute("SELECT prefix, digest FROM accounts_apitoken")
        rows = cursor.fetchall()
    assert len(rows) == 1 and key not in repr(rows) and key.split(".")[1] not in repr(rows)
    assert AuditLog.objects.filter(action="token_issued", actor=alice, target=f"token {rows[0][0]}").exists()


def test_an_expired_token_is_refused(anon_api, alice):
    key = _token(anon_api)
    APIToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _get(f"Token {key}") == 401


def test_the_answer_says_when_it_expires(anon_api, alice, settings):
    body = anon_api.post("/api/v1/auth/token", PASSWORD, format="json").json()
    expires = APIToken.objects.get().expires_at
    assert abs((expires - timezone.now()) - timedelta(days=settings.WB_API_TOKEN_DAYS)) < timedelta(minutes=1)
    assert body["expires_at"]


def test_rotating_returns_a_new_token_and_retires_the_old_one(anon_api, alice):
    old = _token(anon_api)
    response = APIClient().post("/api/v1/auth/token/rotate", HTTP_AUTHORIZATION=f"Token {old}")
    assert response.status_code == 200
    new = response.json()["token"]
    assert new != old
    assert _get(f"Token {old}") == 401
    assert _get(f"Token {new}") == 200


def test_revoking_stops_the_token(anon_api, alice):
    key = _token(anon_api)
    assert APIClient().post("/api/v1/auth/token/revoke", HTTP_AUTHORIZATION=f"Token {key}").status_code == 204
    assert _get(f"Token {key}") == 401
    assert AuditLog.objects.filter(action="token_revoked", actor=alice).exists()


def test_rotating_needs_a_token_not_a_session(api):
    response = api.post("/api/v1/auth/token/rotate")
    assert response.status_code == 400 and "Authorization: Token" in response.json()["detail"]


def test_jwt_access_and_refresh_with_rotation_and_revocation(anon_api, alice):
    pair = anon_api.post("/api/v1/auth/jwt", PASSWORD, format="json")
    assert pair.status_code == 200, pair.content
    access, refresh = pair.json()["access"], pair.json()["refresh"]
    assert _get(f"Bearer {access}") == 200
    renewed = anon_api.post("/api/v1/auth/jwt/refresh", {"refresh": refresh}, format="json")
    assert renewed.status_code == 200
    assert renewed.json()["refresh"] != refresh
    # A refresh token works once: the rotated-away one is blacklisted.
    assert anon_api.post("/api/v1/auth/jwt/refresh", {"refresh": refresh}, format="json").status_code == 401
    latest = renewed.json()["refresh"]
    assert anon_api.post("/api/v1/auth/jwt/revoke", {"refresh": latest}, format="json").status_code == 200
    assert anon_api.post("/api/v1/auth/jwt/refresh", {"refresh": latest}, format="json").status_code == 401
    assert AuditLog.objects.filter(action="login", actor=alice, detail__via="jwt").exists()


def test_a_wrong_jwt_password_is_refused(anon_api, alice):
    response = anon_api.post("/api/v1/auth/jwt", {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 401 and "access" not in response.json()


def test_a_forged_jwt_is_refused(alice):
    assert _get("Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.bogus") == 401


def test_the_token_endpoints_are_in_the_api_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/v1/auth/token/rotate", "/api/v1/auth/jwt", "/api/v1/auth/jwt/refresh", "/api/v1/auth/jwt/revoke"):
        assert path in schema
