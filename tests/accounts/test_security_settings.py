"""Deployment settings pass Django's own checklist; throttles answer 429."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid

import pytest
from django.core.cache import cache
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle

from tests.conftest import ROOT


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if key not in ("WB_TESTING", "WB_TEST_DB_NAME", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = _manage("check", DEBUG="false", SECRET_KEY="", ALLOWED_HOSTS="example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_a_bad_boolean_is_refused_naming_the_variable():
    result = _manage("check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


#
# Throttling
#


@pytest.fixture
def anon_rate(monkeypatch):
    """Set the anon rate to 3/minute for this test.

    DRF's throttles keep the DEFAULT_THROTTLE_RATES dict they were imported with
    (override_settings does not reach it), so the rate is changed in that dict.
    """
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "3/minute")
    assert AnonRateThrottle.THROTTLE_RATES["anon"] == "3/minute"


@pytest.mark.django_db
def test_anonymous_clients_get_429_past_the_anon_rate(anon_api, anon_rate):
    # A fresh address per run: the rate is counted in the shared Redis cache.
    address = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    cache.delete(f"throttle_anon_{address}")
    statuses = [
        anon_api.post("/api/v1/auth/token", {"username": "x", "password": "y"}, REMOTE_ADDR=address).status_code
        for _ in range(4)
    ]
    assert statuses == [400, 400, 400, 429]
    response = anon_api.post("/api/v1/auth/token", {"username": "x", "password": "y"}, REMOTE_ADDR=address)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    cache.delete(f"throttle_anon_{address}")


@pytest.mark.django_db
def test_a_forged_forwarded_for_header_does_not_dodge_the_throttle(anon_api, anon_rate):
    address = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    cache.delete(f"throttle_anon_{address}")
    statuses = [
        anon_api.post(
            "/api/v1/auth/token", {"username": "x", "password": "y"},
            REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        ).status_code
        for n in range(4)
    ]
    assert statuses[-1] == 429
    cache.delete(f"throttle_anon_{address}")


def test_cors_answers_only_listed_origins_and_only_under_api(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    preflight = client.options(
        "/api/v1/workflows", HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET", HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key",
    )
    assert preflight["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "x-api-key" in preflight["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight  # a session cookie never crosses origins
    other = client.options("/api/v1/workflows", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert "Access-Control-Allow-Origin" not in other
    page = client.get("/healthz", HTTP_ORIGIN="https://app.example.com")
    assert "Access-Control-Allow-Origin" not in page


def test_a_cors_origin_with_a_path_is_refused_naming_the_variable():
    result = _manage("check", CORS_ALLOWED_ORIGINS="https://app.example.com/")
    assert result.returncode != 0
    assert "CORS_ALLOWED_ORIGINS" in result.stderr
