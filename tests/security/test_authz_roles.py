"""Roles (viewer, builder, operator, admin) say what kind of thing a user may do; object shares
still say on which workflows. Enforced alike in the API, the pages and the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from apps.accounts import roles
from apps.accounts.models import AuditLog
from apps.executions.engine.orchestrator import start_execution
from apps.sharing.services import share_workflow
from apps.workflows.services import create_workflow

pytestmark = pytest.mark.django_db
WAITING = {"format_version": 1, "signals": [{"name": "go"}], "nodes": [{"id": "wait", "type": "signal_wait", "signal": "go"}]}


def _user(name: str, role: str) -> User:
    user = User.objects.create_user(name, f"{name}@example.com", f"{name}-password-1")
    roles.assign_role(user, role)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def viewer(db):
    return _user("vera", "viewer")


@pytest.fixture
def operator(db):
    return _user("otto", "operator")


@pytest.fixture
def waiting(alice):
    workflow = create_workflow(owner=alice, name="waits", definition=WAITING)
    return workflow, start_execution(workflow, {}, acting_user=alice)


def test_new_users_are_builders_by_default(alice):
    assert roles.roles_of(alice) == ["builder"]


def test_a_viewer_cannot_create_workflows_anywhere(api_as, client, viewer):
    response = api_as(viewer).post("/api/v1/workflows/", {"name": "nope"}, format="json")
    assert response.status_code == 403 and "builder or admin" in response.json()["detail"]
    client.force_login(viewer)
    assert client.get("/workflows/new/").status_code == 403
    assert not viewer.workflows.exists()


def test_a_viewer_with_an_edit_share_still_cannot_run(api_as, alice, viewer):
    workflow = create_workflow(owner=alice, name="shared", definition=WAITING)
    share_workflow(workflow, viewer, "change", acting_user=alice)
    as_viewer = api_as(viewer)
    assert as_viewer.get(f"/api/v1/workflows/{workflow.pk}/").status_code == 200  # the share applies
    assert as_viewer.post(f"/api/v1/workflows/{workflow.pk}/runs", {"input": {}}, format="json").status_code == 403
    assert not workflow.executions.exists()


def test_a_viewer_cannot_store_credentials(api_as, viewer):
    response = api_as(viewer).post("/api/v1/credentials/", {"name": "x", "kind": "bearer", "secret": "s"}, format="json")
    assert response.status_code == 403


def test_a_builder_creates_and_runs(api, alice):
    created = api.post("/api/v1/workflows/", {"name": "mine", "definition": WAITING}, format="json")
    assert created.status_code == 201
    assert api.post(f"/api/v1/workflows/{created.json()['id']}/runs", {"input": {}}, format="json").status_code == 201


def test_an_editor_cannot_cancel_a_run_someone_else_started(api_as, alice, bob, waiting):
    workflow, execution = waiting
    share_workflow(workflow, bob, "change", acting_user=alice)
    response = api_as(bob).post(f"/api/v1/executions/{execution.pk}/cancel")
    assert response.status_code == 403 and "operator role" in response.json()["detail"]


def test_an_operator_acts_on_runs_of_workflows_they_can_see(api_as, alice, operator, waiting):
    workflow, execution = waiting
    as_operator = api_as(operator)
    assert as_operator.post(f"/api/v1/executions/{execution.pk}/cancel").status_code == 404  # no share: not even seen
    share_workflow(workflow, operator, "view", acting_user=alice)
    assert as_operator.post(f"/api/v1/executions/{execution.pk}/cancel").status_code == 200
    assert as_operator.post("/api/v1/workflows/", {"name": "nope"}, format="json").status_code == 403


def test_an_operator_uses_the_admin_for_runs_but_not_for_users(client, alice, operator, waiting):
    client.force_login(operator)
    assert client.get("/admin/executions/execution/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 403


def test_the_admin_role_manages_users_but_cannot_make_superusers(client, alice, admin_user):
    boss = _user("ada", "admin")
    client.force_login(boss)
    assert client.get("/admin/auth/user/").status_code == 200
    response = client.post("/admin/auth/user/", {"action": "set_role_operator", "_selected_action": [alice.pk]})
    assert response.status_code == 302
    assert roles.roles_of(User.objects.get(pk=alice.pk)) == ["operator"]
    assert AuditLog.objects.filter(action="permission_changed", actor=boss, detail__role="operator").exists()
    page = client.get(f"/admin/auth/user/{alice.pk}/change/").content.decode()
    assert 'name="is_superuser"' not in page
    # A superuser's page is read-only to the admin role: no save button, and a post is refused.
    assert 'name="_save"' not in client.get(f"/admin/auth/user/{admin_user.pk}/change/").content.decode()
    assert client.post(f"/admin/auth/user/{admin_user.pk}/change/", {"username": "root", "is_active": ""}).status_code == 403
    assert User.objects.get(pk=admin_user.pk).is_active


def test_the_pages_offer_only_what_the_role_allows(client, alice, viewer):
    workflow = create_workflow(owner=alice, name="shared page", definition=WAITING)
    share_workflow(workflow, viewer, "change", acting_user=alice)
    client.force_login(viewer)
    listing = client.get("/workflows/").content.decode()
    assert "/workflows/new/" not in listing
    detail = client.get(f"/workflows/{workflow.pk}/").content.decode()
    assert f"/workflows/{workflow.pk}/edit/" in detail and f"/workflows/{workflow.pk}/run/" not in detail
    assert client.post(f"/workflows/{workflow.pk}/run/", {}).status_code == 403
    client.force_login(alice)
    assert "/workflows/new/" in client.get("/workflows/").content.decode()
