"""The admin: changelists load for operators, are refused to others, and never show an API key."""

from __future__ import annotations

import pytest

from apps.accounts.models import APIKey, AuditLog
from apps.accounts.services import create_api_key, record_audit
from apps.workflows.models import Workflow
from apps.workflows.services import create_workflow

pytestmark = pytest.mark.django_db

CHANGELISTS = ["/admin/workflows/workflow/", "/admin/accounts/apikey/", "/admin/accounts/auditlog/", "/admin/executions/dynamicitem/"]


@pytest.fixture
def populated(alice, bob, team):
    for n in range(3):
        create_workflow(owner=alice, name=f"Flow {n}", team=team)
    create_api_key(alice, "alice key")
    create_api_key(bob, "bob key")
    record_audit(AuditLog.Action.LOGIN, actor=alice)


@pytest.mark.parametrize("url", CHANGELISTS)
def test_changelists_load_for_a_superuser(admin_client, populated, url):
    response = admin_client.get(url)
    assert response.status_code == 200


@pytest.mark.parametrize("url", CHANGELISTS)
def test_changelists_use_a_fixed_number_of_queries(admin_client, populated, url, django_assert_max_num_queries):
    admin_client.get(url)  # warm the session and content types
    with django_assert_max_num_queries(12):
        assert admin_client.get(url).status_code == 200


@pytest.mark.parametrize("url", CHANGELISTS)
def test_changelists_are_refused_to_a_normal_user(client, alice, url):
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_a_staff_user_without_model_permissions_gets_403(client, bob):
    bob.is_staff = True
    bob.save()
    client.force_login(bob)
    for url in CHANGELISTS:
        assert client.get(url).status_code == 403, url


def test_the_api_key_never_appears_in_the_admin(admin_client, alice):
    api_key, key = create_api_key(alice, "admin-listed")
    secret = key.split(".", 1)[1]
    html = admin_client.get("/admin/accounts/apikey/").content.decode()
    assert api_key.prefix in html
    assert secret not in html


def test_creating_a_key_in_the_admin_shows_it_once_and_audits(admin_client, admin_user, alice):
    response = admin_client.post(
        "/admin/accounts/apikey/add/", {"name": "from admin", "user": alice.pk, "_save": "Save"}, follow=True
    )
    assert response.status_code == 200
    api_key = APIKey.objects.get(name="from admin")
    message = next(str(m) for m in response.context["messages"])
    assert f"{api_key.prefix}." in message
    row = AuditLog.objects.get(action=AuditLog.Action.API_KEY_CREATED)
    assert row.actor == admin_user and row.detail["via"] == "admin"


def test_the_revoke_action_revokes_and_audits(admin_client, alice):
    api_key, key = create_api_key(alice, "to revoke")
    response = admin_client.post(
        "/admin/accounts/apikey/", {"action": "revoke_keys", "_selected_action": [api_key.pk]}, follow=True
    )
    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.revoked
    assert AuditLog.objects.filter(action=AuditLog.Action.API_KEY_REVOKED).count() == 1


def test_the_audit_log_is_read_only_even_for_a_superuser(admin_client, alice):
    row = record_audit(AuditLog.Action.LOGIN, actor=alice)
    assert admin_client.get("/admin/accounts/auditlog/add/").status_code == 403
    assert admin_client.get(f"/admin/accounts/auditlog/{row.pk}/change/").status_code == 200  # view only
    assert admin_client.post(f"/admin/accounts/auditlog/{row.pk}/delete/").status_code == 403
    assert admin_client.post(f"/admin/accounts/auditlog/{row.pk}/change/", {"username": "x"}).status_code == 403
    assert AuditLog.objects.get(pk=row.pk).username == "alice"


def test_the_workflow_admin_has_history_and_object_permissions_pages(admin_client, alice):
    workflow = create_workflow(owner=alice, name="Audited")
    assert admin_client.get(f"/admin/workflows/workflow/{workflow.pk}/history/").status_code == 200
    assert admin_client.get(f"/admin/workflows/workflow/{workflow.pk}/permissions/").status_code == 200


def test_the_deactivate_action_records_a_version(admin_client, alice):
    from reversion.models import Version

    workflow = create_workflow(owner=alice, name="To pause")
    admin_client.post("/admin/workflows/workflow/", {"action": "deactivate", "_selected_action": [workflow.pk]})
    workflow.refresh_from_db()
    assert workflow.is_active is False
    assert Version.objects.get_for_object(workflow).count() == 2


def test_a_workflow_added_in_the_admin_gives_its_owner_every_permission(admin_client, alice):
    response = admin_client.post(
        "/admin/workflows/workflow/add/",
        {"name": "Admin made", "slug": "admin-made", "owner": alice.pk, "description": "", "tags": "[]",
         "definition": '{"format_version": 1, "nodes": [], "edges": []}', "is_active": "on"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    workflow = Workflow.objects.get(slug="admin-made")
    assert alice.has_perm("workflows.admin_workflow", workflow)
