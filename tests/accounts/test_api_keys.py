"""API keys: created once, shown once, used as `Api-Key` or `X-Api-Key`, revocable."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import APIKey, AuditLog
from apps.accounts.services import create_api_key, revoke_api_key

pytestmark = pytest.mark.django_db


def _create(api, name: str = "CI deploys") -> dict:
    response = api.post("/api/v1/api-keys/", {"name": name})
    assert response.status_code == 201, response.content
    return response.json()


def test_creating_a_key_returns_the_full_key_once(api, alice):
    body = _create(api)
    assert body["key"].startswith(body["prefix"] + ".")
    assert body["name"] == "CI deploys"
    assert body["revoked"] is False
    api_key = APIKey.objects.get(prefix=body["prefix"])
    assert api_key.user == alice
    assert body["key"] not in api_key.hashed_key  # stored hashed, not in clear


def test_the_key_and_its_hash_never_appear_after_creation(api):
    body = _create(api)
    secret = body["key"].split(".", 1)[1]
    hashed = APIKey.objects.get(prefix=body["prefix"]).hashed_key
    for response in (
        api.get("/api/v1/api-keys/"),
        api.get(f"/api/v1/api-keys/{body['prefix']}/"),
        api.post(f"/api/v1/api-keys/{body['prefix']}/revoke"),
    ):
        assert response.status_code == 200, response.content
        text = response.content.decode()
        assert secret not in text
        assert hashed.split("$")[-1] not in text
        assert "hashed_key" not in text and '"key"' not in text


def test_the_list_shows_only_my_own_keys(api, api_as, bob):
    _create(api, "alice's")
    create_api_key(bob, "bob's")
    names = [row["name"] for row in api.get("/api/v1/api-keys/").json()["results"]]
    assert names == ["alice's"]
    row = api.get("/api/v1/api-keys/").json()["results"][0]
    assert set(row) == {"prefix", "url", "name", "created", "expiry_date", "last_used_at", "revoked"}


def test_a_stranger_can_neither_see_nor_revoke_my_key(api, api_as, charlie):
    body = _create(api)
    stranger = api_as(charlie)
    assert stranger.get(f"/api/v1/api-keys/{body['prefix']}/").status_code == 404
    assert stranger.post(f"/api/v1/api-keys/{body['prefix']}/revoke").status_code == 404
    assert APIKey.objects.get(prefix=body["prefix"]).revoked is False


def test_anonymous_requests_are_refused(anon_api):
    assert anon_api.get("/api/v1/api-keys/").status_code in (401, 403)
    assert anon_api.post("/api/v1/api-keys/", {"name": "x"}).status_code in (401, 403)


def test_a_key_without_a_name_is_refused_naming_the_field(api):
    response = api.post("/api/v1/api-keys/", {"name": ""})
    assert response.status_code == 400
    assert "name" in response.json()
    assert not APIKey.objects.exists()


def test_an_expiry_in_the_past_is_refused(api):
    response = api.post("/api/v1/api-keys/", {"name": "old", "expiry_date": "2001-01-01T00:00:00Z"})
    assert response.status_code == 400
    assert "expiry_date" in response.json()


def test_the_key_authenticates_in_the_authorization_header(alice):
    _, key = create_api_key(alice, "header")
    client = APIClient()
    response = client.get("/api/v1/api-keys/", HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_the_key_authenticates_in_the_x_api_key_header_and_records_last_use(alice):
    api_key, key = create_api_key(alice, "custom header")
    assert api_key.last_used_at is None
    response = APIClient().get("/api/v1/workflows/", HTTP_X_API_KEY=key)
    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_a_wrong_key_is_refused(alice):
    api_key, key = create_api_key(alice, "real")
    forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    assert APIClient().get("/api/v1/workflows/", HTTP_X_API_KEY=forged).status_code in (401, 403)
    assert APIClient().get("/api/v1/workflows/", HTTP_X_API_KEY="nonsense").status_code in (401, 403)


def test_a_revoked_key_is_refused(api, alice):
    body = _create(api)
    assert APIClient().get("/api/v1/workflows/", HTTP_X_API_KEY=body["key"]).status_code == 200
    response = api.post(f"/api/v1/api-keys/{body['prefix']}/revoke")
    assert response.status_code == 200
    assert response.json()["revoked"] is True
    for headers in ({"HTTP_X_API_KEY": body["key"]}, {"HTTP_AUTHORIZATION": f"Api-Key {body['key']}"}):
        response = APIClient().get("/api/v1/workflows/", **headers)
        assert response.status_code in (401, 403)
        assert "revoked" in response.json()["detail"]


def test_revoking_twice_is_harmless_and_audited_once(alice):
    api_key, _ = create_api_key(alice, "twice")
    assert revoke_api_key(api_key, acting_user=alice) is True
    assert revoke_api_key(api_key, acting_user=alice) is False
    assert AuditLog.objects.filter(action=AuditLog.Action.API_KEY_REVOKED).count() == 1


def test_a_key_of_an_inactive_user_is_refused(alice):
    _, key = create_api_key(alice, "leaver")
    alice.is_active = False
    alice.save()
    assert APIClient().get("/api/v1/workflows/", HTTP_X_API_KEY=key).status_code in (401, 403)


def test_a_key_without_a_name_gets_400_naming_the_field(api):
    response = api.post("/api/v1/api-keys/", {}, format="json")
    assert response.status_code == 400 and "name" in response.json()
