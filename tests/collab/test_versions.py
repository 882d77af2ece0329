"""Version history: list, get, diff (nested bodies too), restore, notes, retention pruning."""

from __future__ import annotations

import copy

import pytest
from django.test import override_settings
from reversion.models import Version

from apps.sharing.services import share_workflow
from apps.versions import services
from apps.versions.tasks import prune_versions
from apps.workflows.services import create_workflow, update_workflow

from .conftest import DEFINITION

pytestmark = pytest.mark.django_db

OLD = {
    "format_version": 1,
    "nodes": [
        {"id": "a", "type": "activity", "activity": "log", "params": {"message": "one"}},
        {"id": "loop", "type": "loop", "mode": "for_each", "items": "$.input.xs",
         "body": {"nodes": [{"id": "inner", "type": "activity", "activity": "noop", "params": {"value": 1}},
                            {"id": "gone", "type": "activity", "activity": "noop"}],
                  "edges": [{"from": "inner", "to": "gone"}]}},
        {"id": "b", "type": "activity", "activity": "noop"},
    ],
    "edges": [{"from": "a", "to": "loop"}, {"from": "loop", "to": "b"}],
}


def _new():
    new = copy.deepcopy(OLD)
    new["nodes"][0]["params"]["message"] = "two"  # a changed
    new["nodes"][1]["body"]["nodes"][0]["params"]["value"] = 2  # inner changed (nested)
    del new["nodes"][1]["body"]["nodes"][1]  # gone removed (nested)
    new["nodes"][1]["body"]["edges"] = []
    new["nodes"].append({"id": "c", "type": "activity", "activity": "noop"})  # c added
    new["edges"].append({"from": "b", "to": "c", "label": "then"})
    new["variables"] = {"x": 1}
    return new


def test_five_updates_make_five_versions_with_author_and_note(api, alice, workflow):
    for i in range(5):
        response = api.patch(f"/api/v1/workflows/{workflow.pk}/", {"description": f"v{i}", "version_note": f"note {i}"}, format="json")
        assert response.status_code == 200, response.content
    versions = api.get(f"/api/v1/workflows/{workflow.pk}/versions/").json()
    assert len(versions) == 6  # created + 5 updates
    assert [v["comment"] for v in versions[:5]] == [f"note {i}" for i in reversed(range(5))]
    assert versions[0]["author"] == "alice" and versions[0]["number"] == 6 and versions[-1]["number"] == 1
    one = api.get(f"/api/v1/workflows/{workflow.pk}/versions/{versions[0]['id']}/").json()
    assert one["content"]["description"] == "v4" and one["content"]["definition"] == DEFINITION


def test_diff_of_a_known_pair(alice):
    before, after = OLD, _new()
    diff = services.diff_definitions(before, after)
    nodes = {n["id"]: n for n in diff["nodes"]}
    assert set(nodes) == {"a", "inner", "gone", "c"}
    assert nodes["a"]["change"] == "changed" and nodes["a"]["fields"] == [{"field": "params.message", "from": "one", "to": "two"}]
    assert nodes["inner"]["change"] == "changed" and nodes["inner"]["path"] == "loop.body"
    assert nodes["inner"]["fields"] == [{"field": "params.value", "from": 1, "to": 2}]
    assert nodes["gone"]["change"] == "removed" and nodes["c"]["change"] == "added"
    edges = {(e["from"], e["to"]): e["change"] for e in diff["edges"]}
    assert edges == {("inner", "gone"): "removed", ("b", "c"): "added"}
    assert diff["definition"] == [{"field": "variables", "from": None, "to": {"x": 1}}]


def test_diff_api_between_two_versions(api, alice):
    workflow = create_workflow(owner=alice, name="Diffed", definition=OLD)
    update_workflow(workflow, acting_user=alice, definition=_new(), name="Diffed 2")
    old, new = sorted(v.pk for v in services.versions_of(workflow))
    body = api.get(f"/api/v1/workflows/{workflow.pk}/versions/diff?from={old}&to={new}").json()
    assert body["summary"] == {"added": 2, "removed": 2, "changed": 2}
    assert {"field": "name", "from": "Diffed", "to": "Diffed 2"} in body["fields"]
    assert api.get(f"/api/v1/workflows/{workflow.pk}/versions/diff?from={old}").status_code == 400


def test_restore_makes_a_new_version(api, alice):
    workflow = create_workflow(owner=alice, name="Restorable", definition=OLD)
    update_workflow(workflow, acting_user=alice, definition=_new())
    first = min(v.pk for v in services.versions_of(workflow))
    response = api.post(f"/api/v1/workflows/{workflow.pk}/versions/{first}/restore")
    assert response.status_code == 201, response.content
    workflow.refresh_from_db()
    assert workflow.definition == OLD
    assert response.json()["version"]["comment"] == f"Restored version {first}"
    assert services.versions_of(workflow).count() == 3


def test_view_only_users_cannot_restore_and_strangers_see_nothing(api_as, alice, bob, charlie, workflow):
    share_workflow(workflow, bob, "view", acting_user=alice)
    vid = services.versions_of(workflow).first().pk
    assert api_as(bob).get(f"/api/v1/workflows/{workflow.pk}/versions/").status_code == 200
    assert api_as(bob).post(f"/api/v1/workflows/{workflow.pk}/versions/{vid}/restore").status_code == 403
    client = api_as(charlie)
    for url in (f"/api/v1/workflows/{workflow.pk}/versions/", f"/api/v1/workflows/{workflow.pk}/versions/{vid}/",
                f"/api/v1/workflows/{workflow.pk}/versions/diff?from={vid}&to={vid}"):
        assert client.get(url).status_code == 404
    assert client.post(f"/api/v1/workflows/{workflow.pk}/versions/{vid}/restore").status_code == 404


def test_a_version_of_another_workflow_is_404(api, alice, workflow):
    other = create_workflow(owner=alice, name="Other", definition=DEFINITION)
    vid = services.versions_of(other).first().pk
    assert api.get(f"/api/v1/workflows/{workflow.pk}/versions/{vid}/").status_code == 404


@override_settings(WB_VERSIONS_KEEP=3)
def test_retention_keeps_the_newest_versions(alice, workflow):
    other = create_workflow(owner=alice, name="Young", definition=DEFINITION)
    for i in range(6):
        update_workflow(workflow, acting_user=alice, description=f"v{i}")
    newest = list(services.versions_of(workflow).values_list("pk", flat=True)[:3])
    assert prune_versions() == 4
    assert list(services.versions_of(workflow).values_list("pk", flat=True)) == newest
    assert services.versions_of(other).count() == 1
    assert prune_versions() == 0


def test_the_prune_task_is_scheduled():
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["prune-workflow-versions"]["task"] == "apps.versions.tasks.prune_versions"
    assert "beat-heartbeat" in settings.CELERY_BEAT_SCHEDULE
