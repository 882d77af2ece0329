"""POST /api/v1/auth/token: username and password for an API token (hashed, expiring)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_a_correct_password_gets_a_token_that_authenticates(anon_api, alice):
    response = anon_api.post("/api/v1/auth/token", {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    client = APIClient()
    assert client.get("/api/v1/workflows/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


def test_asking_again_issues_another_token_and_both_work(anon_api, alice):
    first = anon_api.post("/api/v1/auth/token", {"username": "alice", "password": "alice-password-1"}).json()
    second = anon_api.post("/api/v1/auth/token", {"username": "alice", "password": "alice-password-1"}).json()
    assert first["token"] != second["token"]
    for body in (first, second):
        assert APIClient().get("/api/v1/workflows/", HTTP_AUTHORIZATION=f"Token {body['token']}").status_code == 200


def test_a_wrong_password_gets_400_and_no_token(anon_api, alice):
    response = anon_api.post("/api/v1/auth/token", {"username": "alice", "password": "guess"})
    assert response.status_code == 400
    assert "token" not in response.json()


def test_a_missing_field_is_named(anon_api):
    response = anon_api.post("/api/v1/auth/token", {"username": "alice"})
    assert response.status_code == 400
    assert "password" in response.json()


def test_a_bogus_token_is_refused(alice):
    response = APIClient().get("/api/v1/workflows/", HTTP_AUTHORIZATION="Token 0123456789abcdef")
    assert response.status_code in (401, 403)
