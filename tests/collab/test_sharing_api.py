"""Shares of workflows and templates through the API; levels enforced everywhere."""

from __future__ import annotations

import pytest

from apps.accounts.models import AuditLog
from apps.comments.models import Notification
from apps.templates.services import create_template

from .conftest import DEFINITION

pytestmark = pytest.mark.django_db


def test_owner_shares_with_a_user_and_lists_changes_removes(api, alice, bob, workflow):
    url = f"/api/v1/workflows/{workflow.pk}/shares/"
    response = api.post(url, {"user": "bob", "level": "view"}, format="json")
    assert response.status_code == 201, response.content
    share_id = response.json()["id"]
    assert {"user": "bob", "level": "view", "type": "user"}.items() <= response.json().items()
    assert AuditLog.objects.filter(action="share_granted").exists()
    assert Notification.objects.filter(recipient=bob, kind="shared").count() == 1
    listed = {s["user"]: s["level"] for s in api.get(url).json() if s["user"]}
    assert listed == {"alice": "admin", "bob": "view"}
    assert api.patch(f"{url}{share_id}/", {"level": "edit"}, format="json").json()["level"] == "change"
    assert bob.has_perm("workflows.change_workflow", workflow)
    assert api.delete(f"{url}{share_id}/").status_code == 204
    assert not bob.has_perm("workflows.view_workflow", workflow)


def test_view_only_user_cannot_edit_or_manage_shares(api, api_as, bob, charlie, workflow):
    api.post(f"/api/v1/workflows/{workflow.pk}/shares/", {"user": "bob", "level": "view"}, format="json")
    client = api_as(bob)
    assert client.patch(f"/api/v1/workflows/{workflow.pk}/", {"name": "bob's"}, format="json").status_code == 403
    assert client.post(f"/api/v1/workflows/{workflow.pk}/shares/", {"user": "charlie", "level": "admin"}, format="json").status_code == 403
    assert client.get(f"/api/v1/workflows/{workflow.pk}/shares/").status_code == 200


def test_edit_level_edits_but_cannot_share_admin_level_can(api, api_as, bob, charlie, workflow):
    api.post(f"/api/v1/workflows/{workflow.pk}/shares/", {"user": "bob", "level": "edit"}, format="json")
    client = api_as(bob)
    assert client.patch(f"/api/v1/workflows/{workflow.pk}/", {"name": "bob's"}, format="json").status_code == 200
    assert client.post(f"/api/v1/workflows/{workflow.pk}/shares/", {"user": "charlie", "level": "view"}, format="json").status_code == 403
    api.patch(f"/api/v1/workflows/{workflow.pk}/shares/user-{bob.pk}/", {"level": "admin"}, format="json")
    assert client.post(f"/api/v1/workflows/{workflow.pk}/shares/", {"user": "charlie", "level": "view"}, format="json").status_code == 201


def test_team_share_and_search_results_are_filtered(api, api_as, bob, charlie, team, workflow):
    assert api_as(bob).get("/api/v1/workflows/?search=Nightly").json()["count"] == 0
    response = api.post(f"/api/v1/workflows/{workflow.pk}/shares/", {"team": "builders", "level": "view"}, format="json")
    assert response.status_code == 201 and response.json()["team"] == "builders"
    assert api_as(bob).get("/api/v1/workflows/?search=Nightly").json()["count"] == 1
    assert api_as(charlie).get("/api/v1/workflows/?search=Nightly").json()["count"] == 0


def test_bad_requests_name_the_field(api, workflow):
    url = f"/api/v1/workflows/{workflow.pk}/shares/"
    assert "user" in api.post(url, {"user": "nobody", "level": "view"}, format="json").json()
    assert "level" in api.post(url, {"user": "bob", "level": "owner"}, format="json").json()
    assert "user" in api.post(url, {"level": "view"}, format="json").json()
    assert api.delete(f"{url}user-999999/").status_code == 404


def test_a_stranger_gets_404_everywhere(api_as, alice, charlie, workflow):
    client = api_as(charlie)
    url = f"/api/v1/workflows/{workflow.pk}/shares/"
    assert client.get(url).status_code == 404
    assert client.post(url, {"user": "charlie", "level": "admin"}, format="json").status_code == 404
    assert client.patch(f"{url}user-{alice.pk}/", {"level": "view"}, format="json").status_code == 404
    assert client.delete(f"{url}user-{alice.pk}/").status_code == 404
    assert not charlie.has_perm("workflows.view_workflow", workflow)


def test_template_shares(api, api_as, alice, bob, charlie):
    template = create_template(owner=alice, name="Private T", definition=DEFINITION)
    url = f"/api/v1/templates/{template.pk}/shares/"
    assert api_as(charlie).get(url).status_code == 404
    assert api.post(url, {"user": "bob", "level": "view"}, format="json").status_code == 201
    assert api_as(bob).get(f"/api/v1/templates/{template.pk}/").status_code == 200
    assert api_as(bob).post(url, {"user": "charlie", "level": "view"}, format="json").status_code == 403
    assert api.delete(f"{url}user-{bob.pk}/").status_code == 204
    assert api_as(bob).get(f"/api/v1/templates/{template.pk}/").status_code == 404
