"""Export and import: permissions, schema, round trip, batches, conflicts, refusals."""

from __future__ import annotations

import copy
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.executions.engine.orchestrator import start_execution
from apps.executions.models import Execution
from apps.sharing.services import share_workflow
from apps.transfer.services import export_workflows, import_document
from apps.workflows.models import Workflow
from apps.workflows.services import create_workflow

from .conftest import DEFINITION, wait_for

pytestmark = pytest.mark.django_db


def _batch(owner, n: int = 5) -> list[Workflow]:
    return [create_workflow(owner=owner, name=f"Flow {i}", definition=DEFINITION, tags=[f"t{i}"]) for i in range(n)]


def test_export_one_or_many_as_a_versioned_document(api, alice):
    flows = _batch(alice, 3)
    doc = api.post("/api/v1/workflows/export", {"ids": [f.pk for f in flows]}, format="json").json()
    assert doc["format"] == "workflow-builder-export" and doc["format_version"] == 1 and doc["exported_at"]
    assert [w["slug"] for w in doc["workflows"]] == [f.slug for f in flows]
    assert doc["workflows"][0]["definition"] == DEFINITION and doc["workflows"][0]["triggers"] == []
    got = api.get(f"/api/v1/workflows/export?ids={flows[0].pk}").json()
    assert [w["slug"] for w in got["workflows"]] == [flows[0].slug]


def test_export_of_others_workflows_is_refused(api_as, alice, charlie, bob, workflow):
    mine = create_workflow(owner=charlie, name="Charlie's", definition=DEFINITION)
    response = api_as(charlie).post("/api/v1/workflows/export", {"ids": [mine.pk, workflow.pk]}, format="json")
    assert response.status_code == 404
    assert "Nightly" not in response.content.decode()
    share_workflow(workflow, bob, "view", acting_user=alice)
    assert api_as(bob).post("/api/v1/workflows/export", {"ids": [workflow.pk]}, format="json").status_code == 200


def test_history_is_exported_with_secrets_redacted(api, alice, workflow):
    Execution.objects.create(
        workflow=workflow, definition=DEFINITION, status="completed",
        input={"name": "x", "api_key": "sk-123456789", "headers": {"Authorization": "Bearer abcdefghijkl"}}, output={"ok": True},
    )
    doc = api.post("/api/v1/workflows/export", {"ids": [workflow.pk], "include_history": True}, format="json").json()
    run = doc["workflows"][0]["executions"][0]
    text = json.dumps(run)
    assert run["status"] == "completed" and run["input"]["name"] == "x"
    assert "sk-123456789" not in text and "abcdefghijkl" not in text


def test_the_schema_is_published(anon_api):
    schema = anon_api.get("/api/v1/schema/export.json").json()
    assert schema["properties"]["format"]["const"] == "workflow-builder-export"


def test_import_a_batch_of_five_then_conflicts_rename_or_skip(api, alice, bob, api_as):
    doc = export_workflows(_batch(alice, 5))
    response = api_as(bob).post("/api/v1/workflows/import", {"document": doc, "on_conflict": "rename"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["counts"] == {"create": 0, "rename": 5, "skip": 0}
    renamed = Workflow.objects.filter(owner=bob)
    assert renamed.count() == 5 and all(w.slug.endswith("-imported") for w in renamed)
    skipped = api_as(bob).post("/api/v1/workflows/import", {"document": doc, "on_conflict": "skip"}, format="json").json()
    assert skipped["counts"] == {"create": 0, "rename": 0, "skip": 5}
    assert Workflow.objects.count() == 10


def test_dry_run_previews_and_creates_nothing(api, alice):
    doc = export_workflows(_batch(alice, 2))
    doc["workflows"][1]["slug"] = "brand-new"
    body = api.post("/api/v1/workflows/import", {"document": doc, "dry_run": True}, format="json").json()
    assert body["dry_run"] and [w["action"] for w in body["workflows"]] == ["rename", "create"]
    assert Workflow.objects.count() == 2


def test_invalid_documents_are_refused_with_every_problem_and_nothing_created(api, alice):
    doc = export_workflows(_batch(alice, 3))
    Workflow.objects.all().delete()
    bad = copy.deepcopy(doc)
    bad["workflows"][0]["definition"]["nodes"][0]["activity"] = "no.such.activity"
    del bad["workflows"][1]["name"]
    response = api.post("/api/v1/workflows/import", {"document": bad}, format="json")
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert {"index": 1, "field": "name"}.items() <= problems[0].items()
    bad2 = copy.deepcopy(doc)
    bad2["workflows"][0]["definition"]["nodes"][0]["activity"] = "no.such.activity"
    problems = api.post("/api/v1/workflows/import", {"document": bad2}, format="json").json()["problems"]
    assert problems[0]["index"] == 0 and problems[0]["slug"] == doc["workflows"][0]["slug"] and problems[0]["node"] == "greet"
    assert problems[0]["field"].startswith("definition")
    assert api.post("/api/v1/workflows/import", {"document": {"format": "other"}}, format="json").status_code == 400
    assert not Workflow.objects.exists()


def test_missing_child_workflow_references_are_reported(alice):
    doc = export_workflows([create_workflow(owner=alice, name="Parent", definition=DEFINITION)])
    Workflow.objects.all().delete()
    from apps.transfer import services

    doc["workflows"][0]["definition"]["nodes"].append({"id": "child", "type": "child_workflow", "workflow": "nowhere"})
    result = services.plan_import(doc, user=alice)
    assert any(p.code == "missing_child_workflow" and p.node == "child" for p in result.problems)


def test_a_stranger_can_import_only_as_themselves(api_as, charlie, alice):
    doc = export_workflows(_batch(alice, 1))
    Workflow.objects.all().delete()
    assert api_as(charlie).post("/api/v1/workflows/import", {"document": doc}, format="json").status_code == 201
    assert Workflow.objects.get().owner == charlie


def test_anonymous_cannot_export_or_import(anon_api, workflow):
    assert anon_api.post("/api/v1/workflows/export", {"ids": [workflow.pk]}, format="json").status_code in (401, 403)
    assert anon_api.post("/api/v1/workflows/import", {"document": {}}, format="json").status_code in (401, 403)


def test_management_commands_round_trip_and_refuse(tmp_path, alice, admin_user):
    _batch(alice, 2)
    out = tmp_path / "export.json"
    call_command("export_workflows", "--all", "-o", str(out), stderr=StringIO())
    Workflow.objects.all().delete()
    stdout = StringIO()
    call_command("import_workflows", str(out), stdout=stdout)
    assert "[2/2]" in stdout.getvalue() and Workflow.objects.count() == 2
    bad = json.loads(out.read_text())
    bad["workflows"][0]["definition"] = {"nodes": "nope"}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(CommandError, match="refused"):
        call_command("import_workflows", str(tmp_path / "bad.json"), stdout=StringIO(), stderr=StringIO())
    assert Workflow.objects.count() == 2


@pytest.mark.worker
def test_round_trip_into_an_empty_database_gives_identical_definitions_and_results(worker, alice, api):
    flows = [create_workflow(owner=alice, name=f"Round {i}", definition=DEFINITION) for i in range(2)]
    before = {}
    for flow in flows:
        run = wait_for(start_execution(flow, {"name": "Ada"}, acting_user=alice))
        before[flow.slug] = (flow.definition, run.status, run.output)
    doc = api.post("/api/v1/workflows/export", {"ids": [f.pk for f in flows], "include_history": True}, format="json").json()
    Workflow.objects.all().delete()
    assert not Execution.objects.exists()
    result = import_document(json.loads(json.dumps(doc)), user=alice)
    assert result.ok and result.counts["create"] == 2
    for slug, (definition, status, output) in before.items():
        workflow = Workflow.objects.get(slug=slug)
        run = wait_for(start_execution(workflow, {"name": "Ada"}, acting_user=alice))
        assert (workflow.definition, run.status, run.output) == (definition, status, output)
