"""Publishing a template exposes its definition to everyone: it needs admin rights on the
workflow it was saved from (issue 15: a viewer saved a workflow as a public template)."""

from __future__ import annotations

import pytest

from apps.accounts.models import AuditLog
from apps.sharing.services import share_workflow
from apps.templates.models import WorkflowTemplate
from apps.workflows.services import create_workflow

pytestmark = pytest.mark.django_db
DEFINITION = {"format_version": 1, "nodes": [{"id": "secret-sauce", "type": "activity", "activity": "noop"}]}


@pytest.fixture
def workflow(alice):
    return create_workflow(owner=alice, name="private recipe", definition=DEFINITION)


def test_a_viewer_cannot_publish_the_workflow_as_a_public_template(api_as, alice, charlie, workflow):
    share_workflow(workflow, charlie, "view", acting_user=alice)
    response = api_as(charlie).post(f"/api/v1/workflows/{workflow.pk}/save-as-template", {"is_public": True}, format="json")
    assert response.status_code == 403
    assert "admin permission" in response.json()["detail"]
    assert not WorkflowTemplate.objects.filter(is_public=True).exists()


def test_a_viewer_cannot_make_a_private_copy_public_later(api_as, alice, charlie, workflow):
    share_workflow(workflow, charlie, "view", acting_user=alice)
    created = api_as(charlie).post(f"/api/v1/workflows/{workflow.pk}/save-as-template", {}, format="json")
    assert created.status_code == 201 and created.json()["is_public"] is False
    response = api_as(charlie).patch(f"/api/v1/templates/{created.json()['id']}/", {"is_public": True}, format="json")
    assert response.status_code == 403
    assert WorkflowTemplate.objects.get(pk=created.json()["id"]).is_public is False


def test_an_editor_cannot_publish_either(api_as, alice, bob, workflow):
    share_workflow(workflow, bob, "change", acting_user=alice)
    response = api_as(bob).post(f"/api/v1/workflows/{workflow.pk}/save-as-template", {"is_public": True}, format="json")
    assert response.status_code == 403


def test_an_admin_of_the_workflow_publishes_and_it_is_audited(api_as, alice, bob, workflow):
    share_workflow(workflow, bob, "admin", acting_user=alice)
    response = api_as(bob).post(f"/api/v1/workflows/{workflow.pk}/save-as-template", {"is_public": True}, format="json")
    assert response.status_code == 201 and response.json()["is_public"] is True
    row = AuditLog.objects.get(action="template_published")
    assert row.actor == bob and row.detail["source_workflow"] == workflow.pk


def test_the_save_as_page_refuses_publishing_for_a_viewer(client, alice, charlie, workflow):
    share_workflow(workflow, charlie, "view", acting_user=alice)
    client.force_login(charlie)
    page = client.get(f"/workflows/{workflow.pk}/save-as-template/")
    assert page.status_code == 200 and 'name="is_public"' not in page.content.decode()
    response = client.post(f"/workflows/{workflow.pk}/save-as-template/", {"name": "mine", "category": "custom", "is_public": "on"})
    assert response.status_code == 422 and "needs the admin permission" in response.content.decode()
    assert not WorkflowTemplate.objects.exists()


def test_a_stranger_gets_404(api_as, charlie, workflow):
    assert api_as(charlie).post(f"/api/v1/workflows/{workflow.pk}/save-as-template", {"is_public": True}, format="json").status_code == 404
