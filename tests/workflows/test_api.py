from __future__ import annotations

import pytest
import reversion
from reversion.models import Version

from apps.sharing.services import share_workflow
from apps.workflows.models import Workflow
from apps.workflows.services import create_workflow

pytestmark = pytest.mark.django_db

DEFINITION = {"format_version": 1, "nodes": [{"id": "hello", "type": "activity", "activity": "log", "params": {"message": "hi"}}], "edges": []}


@pytest.fixture
def workflow(alice) -> Workflow:
    return create_workflow(owner=alice, name="Nightly report", tags=["reports"], definition=DEFINITION)


def test_anonymous_requests_get_401_and_no_data(anon_api, workflow):
    for response in (anon_api.get("/api/v1/workflows/"), anon_api.get(f"/api/v1/workflows/{workflow.pk}/")):
        assert response.status_code in (401, 403)
        assert "Nightly" not in response.content.decode()


def test_a_stranger_gets_404_on_anothers_workflow(api_as, charlie, workflow):
    client = api_as(charlie)
    assert client.get(f"/api/v1/workflows/{workflow.pk}/").status_code == 404
    assert client.patch(f"/api/v1/workflows/{workflow.pk}/", {"name": "mine"}).status_code == 404
    assert client.delete(f"/api/v1/workflows/{workflow.pk}/").status_code == 404
    assert client.get("/api/v1/workflows/").json()["count"] == 0
    workflow.refresh_from_db()
    assert workflow.name == "Nightly report"


def test_view_share_lets_a_second_user_read_but_not_change(api_as, alice, bob, workflow):
    share_workflow(workflow, bob, "view", acting_user=alice)
    client = api_as(bob)
    assert client.get(f"/api/v1/workflows/{workflow.pk}/").json()["name"] == "Nightly report"
    assert client.patch(f"/api/v1/workflows/{workflow.pk}/", {"name": "bob's"}).status_code == 403
    workflow.refresh_from_db()
    assert workflow.name == "Nightly report"


def test_change_share_lets_them_update(api_as, alice, bob, workflow):
    share_workflow(workflow, bob, "change", acting_user=alice)
    response = api_as(bob).patch(f"/api/v1/workflows/{workflow.pk}/", {"name": "Renamed by bob"})
    assert response.status_code == 200, response.content
    workflow.refresh_from_db()
    assert workflow.name == "Renamed by bob"


def test_team_share_reaches_team_members(api_as, alice, bob, team, workflow):
    share_workflow(workflow, team, "view", acting_user=alice)
    assert api_as(bob).get(f"/api/v1/workflows/{workflow.pk}/").status_code == 200


def test_list_filters_by_tag_and_searches_by_name(api, alice):
    create_workflow(owner=alice, name="Invoice sync", tags=["finance"])
    create_workflow(owner=alice, name="Deploy", tags=["devops"])
    assert [w["name"] for w in api.get("/api/v1/workflows/?tag=finance").json()["results"]] == ["Invoice sync"]
    assert [w["name"] for w in api.get("/api/v1/workflows/?search=deplo").json()["results"]] == ["Deploy"]


def test_create_makes_the_caller_owner(api, alice):
    response = api.post("/api/v1/workflows/", {"name": "New one", "definition": DEFINITION}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["owner"] == "alice" and body["slug"] == "new-one"


def test_a_missing_field_gets_400_naming_it(api):
    response = api.post("/api/v1/workflows/", {"description": "no name"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()
    assert not Workflow.objects.exists()


def test_invalid_json_gets_400_and_the_row_is_unchanged(api, workflow):
    response = api.generic(
        "PATCH", f"/api/v1/workflows/{workflow.pk}/", '{"name": "broken",', content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]
    workflow.refresh_from_db()
    assert workflow.name == "Nightly report"


def test_a_non_object_definition_gets_400_naming_the_field(api, workflow):
    response = api.patch(f"/api/v1/workflows/{workflow.pk}/", {"definition": [1, 2]}, format="json")
    assert response.status_code == 400
    assert "definition" in response.json()
    workflow.refresh_from_db()
    assert workflow.definition == DEFINITION


def test_each_update_makes_a_version_with_its_author(api_as, alice, bob, workflow):
    share_workflow(workflow, bob, "change", acting_user=alice)
    api_as(alice).patch(f"/api/v1/workflows/{workflow.pk}/", {"description": "one"}, format="json")
    api_as(bob).patch(f"/api/v1/workflows/{workflow.pk}/", {"description": "two"}, format="json")
    versions = list(Version.objects.get_for_object(workflow).select_related("revision__user"))
    # newest first: bob's update, alice's update, creation
    assert [v.revision.user.username for v in versions] == ["bob", "alice", "alice"]
    assert versions[0].field_dict["description"] == "two"
