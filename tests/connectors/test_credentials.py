"""Credentials: encrypted at rest, write-only through the API, scoped to their owner."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import override_settings

from apps.connectors import crypto, services
from apps.connectors.models import Credential

pytestmark = pytest.mark.django_db
SECRET = "s3cret-value-that-must-not-leak"


def test_creating_one_never_returns_the_secret(api, alice):
    response = api.post("/api/v1/credentials/", {"name": "github", "kind": "bearer", "secret": SECRET}, format="json")
    assert response.status_code == 201, response.content
    assert SECRET not in response.content.decode()
    assert response.json()["has_secret"] is True
    listed = api.get("/api/v1/credentials/")
    detail = api.get(f"/api/v1/credentials/{response.json()['id']}/")
    for reply in (listed, detail):
        assert reply.status_code == 200 and SECRET not in reply.content.decode()
    assert Credential.objects.get(owner=alice, name="github").get_secret() == SECRET


def test_the_secret_is_encrypted_at_rest(alice):
    credential = services.create_credential(owner=alice, name="x", kind="secret", secret=SECRET)
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_encrypted FROM connectors_credential WHERE id = %s", [credential.pk])
        stored = cursor.fetchone()[0]
    assert SECRET not in stored
    assert crypto.decrypt(stored) == SECRET


def test_keys_can_be_rotated(alice):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(CREDENTIALS_KEY=old):
        credential = services.create_credential(owner=alice, name="x", kind="secret", secret=SECRET)
    with override_settings(CREDENTIALS_KEY=f"{new},{old}"):
        assert services.rotate_all() == 1
    with override_settings(CREDENTIALS_KEY=new):
        credential.refresh_from_db()
        assert credential.get_secret() == SECRET


def test_updating_without_a_secret_keeps_it_and_with_one_replaces_it(api, alice):
    created = api.post("/api/v1/credentials/", {"name": "k", "kind": "api_key_header", "field_name": "X-Key", "secret": SECRET}, format="json").json()
    reply = api.patch(f"/api/v1/credentials/{created['id']}/", {"description": "the key"}, format="json")
    assert reply.status_code == 200 and reply.json()["description"] == "the key"
    assert Credential.objects.get(pk=created["id"]).get_secret() == SECRET
    api.patch(f"/api/v1/credentials/{created['id']}/", {"secret": "another-one"}, format="json")
    assert Credential.objects.get(pk=created["id"]).get_secret() == "another-one"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"name": "b", "kind": "basic", "secret": "pw"}, "username"),
        ({"name": "q", "kind": "api_key_query", "secret": "k"}, "field_name"),
        ({"name": "n", "kind": "bearer"}, "secret"),
        ({"name": "bad name!", "kind": "bearer", "secret": "x"}, "name"),
        ({"name": "n", "kind": "telepathy", "secret": "x"}, "kind"),
    ],
)
def test_bad_input_gets_400_naming_the_field(api, payload, field):
    response = api.post("/api/v1/credentials/", payload, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Credential.objects.exists()


def test_names_are_unique_per_owner_only(api, api_as, bob):
    assert api.post("/api/v1/credentials/", {"name": "gh", "kind": "bearer", "secret": "a"}, format="json").status_code == 201
    assert api.post("/api/v1/credentials/", {"name": "gh", "kind": "bearer", "secret": "b"}, format="json").status_code == 400
    assert api_as(bob).post("/api/v1/credentials/", {"name": "gh", "kind": "bearer", "secret": "c"}, format="json").status_code == 201


def test_a_stranger_cannot_see_or_touch_anothers_credential(api_as, alice, charlie):
    credential = services.create_credential(owner=alice, name="mine", kind="bearer", secret=SECRET)
    stranger = api_as(charlie)
    assert stranger.get("/api/v1/credentials/").json()["results"] == []
    for method in ("get", "patch", "delete"):
        assert getattr(stranger, method)(f"/api/v1/credentials/{credential.pk}/").status_code == 404
    assert Credential.objects.filter(pk=credential.pk).exists()


def test_anonymous_requests_get_401(anon_api, alice):
    services.create_credential(owner=alice, name="mine", kind="bearer", secret=SECRET)
    assert anon_api.get("/api/v1/credentials/").status_code in (401, 403)
    assert anon_api.post("/api/v1/credentials/", {"name": "x", "kind": "bearer", "secret": "y"}, format="json").status_code in (401, 403)


def test_delete_removes_it(api, alice):
    credential = services.create_credential(owner=alice, name="gone", kind="bearer", secret=SECRET)
    assert api.delete(f"/api/v1/credentials/{credential.pk}/").status_code == 204
    assert not Credential.objects.exists()


def test_the_admin_shows_the_secret_masked(client, admin_user, alice):
    credential = services.create_credential(owner=alice, name="gh", kind="bearer", secret=SECRET)
    client.force_login(admin_user)
    page = client.get("/admin/connectors/credential/")
    change = client.get(f"/admin/connectors/credential/{credential.pk}/change/")
    for response in (page, change):
        assert response.status_code == 200
        assert SECRET not in response.content.decode()
    assert "••••••ak" in page.content.decode()


def test_the_admin_can_create_one_with_a_write_only_secret(client, admin_user, alice):
    client.force_login(admin_user)
    response = client.post("/admin/connectors/credential/add/", {"owner": alice.pk, "name": "slack", "kind": "secret", "secret": SECRET, "description": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Credential.objects.get(name="slack").get_secret() == SECRET
    assert client.get("/admin/connectors/delivery/").status_code == 200
    assert json.dumps(list(Credential.objects.values("name", "kind"))).count("slack") == 1
