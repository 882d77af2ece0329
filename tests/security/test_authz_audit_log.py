"""Security-relevant actions leave an audit row (who, what, from where), filterable in the admin."""

from __future__ import annotations

import pytest

from apps.accounts.models import AuditLog
from apps.executions.engine.orchestrator import start_execution
from apps.sharing.services import share_workflow
from apps.workflows.services import create_workflow

pytestmark = pytest.mark.django_db
WAITING = {"format_version": 1, "signals": [{"name": "go"}], "nodes": [{"id": "wait", "type": "signal_wait", "signal": "go"}]}


@pytest.fixture
def workflow(alice):
    return create_workflow(owner=alice, name="audited", definition={"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "noop"}]})


def test_deleting_a_workflow_is_audited(api, alice, workflow):
    assert api.delete(f"/api/v1/workflows/{workflow.pk}/").status_code == 204
    row = AuditLog.objects.get(action="workflow_deleted")
    assert row.actor == alice and row.target == f"workflow {workflow.pk}" and row.detail["workflow"] == workflow.slug


def test_editing_a_definition_is_audited_but_renaming_is_not_a_definition_edit(api, alice, bob, api_as, workflow):
    share_workflow(workflow, bob, "change", acting_user=alice)
    definition = {"format_version": 1, "nodes": [{"id": "b", "type": "activity", "activity": "noop"}]}
    assert api_as(bob).patch(f"/api/v1/workflows/{workflow.pk}/", {"definition": definition}, format="json").status_code == 200
    assert api.patch(f"/api/v1/workflows/{workflow.pk}/", {"name": "renamed"}, format="json").status_code == 200
    rows = AuditLog.objects.filter(action="definition_edited")
    assert [r.actor for r in rows] == [bob]


def test_cancelling_a_run_is_audited(api, alice):
    workflow = create_workflow(owner=alice, name="waits", definition=WAITING)
    execution = start_execution(workflow, {}, acting_user=alice)
    assert api.post(f"/api/v1/executions/{execution.pk}/cancel").status_code == 200
    row = AuditLog.objects.get(action="execution_cancelled")
    assert row.actor == alice and row.target == f"execution {execution.pk}" and row.detail["via"] == "api"


def test_export_and_import_are_audited(api, alice, workflow):
    document = api.get(f"/api/v1/workflows/export?ids={workflow.pk}").json()
    exported = AuditLog.objects.get(action="workflows_exported")
    assert exported.actor == alice and exported.detail["workflows"] == [workflow.pk]
    assert api.post("/api/v1/workflows/import", {"document": document, "dry_run": True}, format="json").status_code == 200
    assert not AuditLog.objects.filter(action="workflows_imported").exists()  # a preview writes nothing
    assert api.post("/api/v1/workflows/import", {"document": document}, format="json").status_code == 201
    imported = AuditLog.objects.get(action="workflows_imported")
    assert imported.actor == alice and len(imported.detail["workflows"]) == 1


def test_the_admin_filters_the_log_by_action(client, admin_user, api, workflow):
    api.delete(f"/api/v1/workflows/{workflow.pk}/")
    client.force_login(admin_user)
    page = client.get("/admin/accounts/auditlog/?action__exact=workflow_deleted")
    assert page.status_code == 200 and f"workflow {workflow.pk}" in page.content.decode()
