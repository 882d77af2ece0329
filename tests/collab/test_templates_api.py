"""Templates: CRUD, visibility, search and filters, instantiate, save as template, stats."""

from __future__ import annotations

import pytest
from reversion.models import Version

from apps.executions.models import Execution
from apps.sharing.shares import grant
from apps.templates.models import TemplateUsage, WorkflowTemplate
from apps.templates.services import create_template
from apps.workflows.models import Workflow

from .conftest import DEFINITION

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_template(alice) -> WorkflowTemplate:
    return create_template(owner=alice, name="Alice's private", definition=DEFINITION, category="devops", tags=["ops"])


@pytest.fixture
def public_template(alice) -> WorkflowTemplate:
    return create_template(
        owner=alice, name="Shared ETL", definition=DEFINITION, category="data_processing", tags=["etl"], is_public=True,
        description="Moves rows around",
    )


def test_it_creates_a_template_owned_by_the_caller_with_a_version(api, alice):
    response = api.post("/api/v1/templates/", {"name": "My template", "definition": DEFINITION, "category": "custom"}, format="json")
    assert response.status_code == 201, response.content
    template = WorkflowTemplate.objects.get(pk=response.json()["id"])
    assert template.owner == alice and template.slug == "my-template" and not template.is_public
    assert Version.objects.get_for_object(template).count() == 1
    assert response.json()["usage_count"] == 0 and response.json()["success_rate"] is None


def test_an_invalid_definition_is_refused_naming_the_node(api):
    bad = {"format_version": 1, "nodes": [{"id": "x", "type": "activity", "activity": "nope"}]}
    response = api.post("/api/v1/templates/", {"name": "Bad", "definition": bad}, format="json")
    assert response.status_code == 400
    assert "x" in str(response.json()["definition"])
    assert not WorkflowTemplate.objects.exists()


def test_owner_updates_and_deletes(api, private_template):
    url = f"/api/v1/templates/{private_template.pk}/"
    assert api.patch(url, {"description": "new"}, format="json").status_code == 200
    private_template.refresh_from_db()
    assert private_template.description == "new"
    assert api.delete(url).status_code == 204
    assert not WorkflowTemplate.objects.filter(pk=private_template.pk).exists()


def test_public_templates_are_visible_to_everyone_but_read_only(api_as, charlie, public_template, private_template):
    client = api_as(charlie)
    names = [t["name"] for t in client.get("/api/v1/templates/").json()["results"]]
    assert names == ["Shared ETL"]
    assert client.get(f"/api/v1/templates/{public_template.pk}/").status_code == 200
    assert client.patch(f"/api/v1/templates/{public_template.pk}/", {"name": "mine"}, format="json").status_code == 403
    assert client.delete(f"/api/v1/templates/{public_template.pk}/").status_code == 403


def test_a_stranger_gets_404_on_a_private_template(api_as, charlie, private_template):
    client = api_as(charlie)
    url = f"/api/v1/templates/{private_template.pk}/"
    assert client.get(url).status_code == 404
    assert client.patch(url, {"name": "x"}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    assert client.post(url + "instantiate/", {}, format="json").status_code == 404
    assert not Workflow.objects.exists()


def test_anonymous_gets_nothing(anon_api, public_template):
    assert anon_api.get("/api/v1/templates/").status_code in (401, 403)
    assert anon_api.get(f"/api/v1/templates/{public_template.pk}/").status_code in (401, 403)


def test_a_team_share_makes_a_private_template_visible(api_as, alice, bob, team, private_template):
    assert api_as(bob).get(f"/api/v1/templates/{private_template.pk}/").status_code == 404
    grant(private_template, team, "view", acting_user=alice)
    assert api_as(bob).get(f"/api/v1/templates/{private_template.pk}/").status_code == 200
    assert api_as(bob).patch(f"/api/v1/templates/{private_template.pk}/", {"name": "b"}, format="json").status_code == 403


def test_search_and_filters(api, public_template, private_template):
    def names(query: str) -> list[str]:
        return [t["name"] for t in api.get("/api/v1/templates/" + query).json()["results"]]

    assert names("?category=devops") == ["Alice's private"]
    assert names("?tag=etl") == ["Shared ETL"]
    assert names("?q=rows") == ["Shared ETL"]
    assert names("?search=private") == ["Alice's private"]


def test_instantiate_makes_a_workflow_the_caller_owns_and_counts_usage(api_as, bob, public_template):
    response = api_as(bob).post(f"/api/v1/templates/{public_template.pk}/instantiate/", {"name": "Bob's ETL"}, format="json")
    assert response.status_code == 201, response.content
    workflow = Workflow.objects.get(pk=response.json()["id"])
    assert workflow.owner == bob and workflow.name == "Bob's ETL" and workflow.definition == DEFINITION
    assert bob.has_perm("workflows.admin_workflow", workflow)
    assert TemplateUsage.objects.get(workflow=workflow).template == public_template
    detail = api_as(bob).get(f"/api/v1/templates/{public_template.pk}/").json()
    assert detail["usage_count"] == 1


def test_success_rate_counts_finished_runs_of_instantiated_workflows(api, alice, public_template):
    from apps.templates.services import instantiate_template

    workflow = instantiate_template(public_template, user=alice)
    for status in ("completed", "completed", "completed", "failed", "running"):
        Execution.objects.create(workflow=workflow, definition=DEFINITION, status=status)
    detail = api.get(f"/api/v1/templates/{public_template.pk}/").json()
    assert detail["usage_count"] == 1
    assert detail["success_rate"] == 0.75


def test_save_as_template(api, alice, workflow):
    response = api.post(f"/api/v1/workflows/{workflow.pk}/save-as-template", {"name": "From report", "category": "custom"}, format="json")
    assert response.status_code == 201, response.content
    template = WorkflowTemplate.objects.get(pk=response.json()["id"])
    assert template.definition == workflow.definition and template.owner == alice and not template.is_public


def test_save_as_template_of_anothers_workflow_is_404(api_as, charlie, workflow):
    response = api_as(charlie).post(f"/api/v1/workflows/{workflow.pk}/save-as-template", {"name": "x"}, format="json")
    assert response.status_code == 404
    assert not WorkflowTemplate.objects.exists()
