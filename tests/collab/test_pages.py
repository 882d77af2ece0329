"""The collaboration pages render for people with access and answer 404 to strangers."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.comments.models import Comment, Notification
from apps.templates.services import create_template
from apps.transfer.services import export_workflows
from apps.versions.services import versions_of
from apps.workflows.models import Workflow
from apps.workflows.services import update_workflow

from .conftest import DEFINITION

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def template(alice):
    return create_template(owner=alice, name="Private template", definition=DEFINITION, category="devops")


def test_pages_render_for_the_owner(alice, workflow, template):
    update_workflow(workflow, acting_user=alice, description="v2")
    client = _client(alice)
    for url in (
        "/templates/", "/templates/?view=list&category=devops&q=Private", f"/templates/{template.pk}/",
        f"/workflows/{workflow.pk}/save-as-template/", f"/workflows/{workflow.pk}/versions/",
        f"/workflows/{workflow.pk}/share/", f"/templates/{template.pk}/share/", f"/workflows/{workflow.pk}/comments/",
        f"/workflows/{workflow.pk}/activity/", "/activity/", "/notifications/", "/workflows/import/", "/workflows/export/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    assert client.get(f"/templates/{template.pk}/graph.svg")["Content-Type"] == "image/svg+xml"
    svg = client.get(f"/workflows/{workflow.pk}/versions/diff.svg").content.decode()
    assert "<svg" in svg


def test_strangers_get_404_on_every_page(charlie, workflow, template):
    client = _client(charlie)
    for url in (
        f"/templates/{template.pk}/", f"/templates/{template.pk}/graph.svg", f"/workflows/{workflow.pk}/save-as-template/",
        f"/workflows/{workflow.pk}/versions/", f"/workflows/{workflow.pk}/versions/diff.svg", f"/workflows/{workflow.pk}/share/",
        f"/templates/{template.pk}/share/", f"/workflows/{workflow.pk}/comments/", f"/workflows/{workflow.pk}/activity/",
        f"/workflows/export/?ids={workflow.pk}",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/workflows/{workflow.pk}/comments/", {"body": "hi"}).status_code == 404
    assert client.post(f"/templates/{template.pk}/use/").status_code == 404
    vid = versions_of(workflow).first().pk
    assert client.post(f"/workflows/{workflow.pk}/versions/{vid}/restore/").status_code == 404
    assert "Private template" not in client.get("/templates/").content.decode()


def test_anonymous_is_sent_to_login(client, workflow):
    response = client.get(f"/workflows/{workflow.pk}/versions/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_comment_page_posts_escaped_comments(alice, workflow):
    client = _client(alice)
    response = client.post(f"/workflows/{workflow.pk}/comments/", {"body": "<b>hi</b> **there**"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "&lt;b&gt;hi&lt;/b&gt; <strong>there</strong>" in html
    assert Comment.objects.count() == 1


def test_share_dialog_shares_and_notifies(alice, bob, workflow):
    response = _client(alice).post(f"/workflows/{workflow.pk}/share/", {"action": "add", "grantee": "bob", "level": "view"})
    assert response.status_code == 302
    assert bob.has_perm("workflows.view_workflow", workflow)
    assert Notification.objects.filter(recipient=bob, kind="shared").exists()
    assert _client(bob).post(f"/workflows/{workflow.pk}/share/", {"action": "add", "grantee": "bob", "level": "admin"}).status_code == 403


def test_use_template_page_creates_a_workflow(bob, template, alice):
    from apps.sharing.shares import grant

    grant(template, bob, "view", acting_user=alice)
    _client(bob).post(f"/templates/{template.pk}/use/", {"name": "Bob's copy"})
    assert Workflow.objects.get(name="Bob's copy").owner == bob


def test_import_page_previews_then_imports(alice, workflow):
    document = json.dumps(export_workflows([workflow])).encode()
    client = _client(alice)
    preview = client.post("/workflows/import/", {"document": SimpleUploadedFile("e.json", document), "mode": "preview"}, HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert preview.status_code == 200 and "Preview" in preview.content.decode() and Workflow.objects.count() == 1
    done = client.post("/workflows/import/", {"document": SimpleUploadedFile("e.json", document), "mode": "import"})
    assert done.status_code == 200 and Workflow.objects.count() == 2
    bad = client.post("/workflows/import/", {"document": SimpleUploadedFile("e.json", b"{nope"), "mode": "import"})
    assert bad.status_code == 422 and Workflow.objects.count() == 2


def test_sharing_a_workflow_with_its_owner_is_refused_and_leaves_them_admin(alice, workflow):
    client = _client(alice)
    response = client.post(f"/workflows/{workflow.pk}/share/", {"action": "add", "grantee": "alice", "level": "view"})
    assert response.status_code == 422
    assert "owns this workflow" in response.content.decode()
    assert client.get(f"/workflows/{workflow.pk}/edit/").status_code == 200
    assert client.post(f"/workflows/{workflow.pk}/share/", {"action": "add", "grantee": "", "level": "view"}).status_code == 422


def test_the_version_page_numbers_the_diff_as_its_table_does_and_shows_values_as_json(alice, workflow):
    definition = json.loads(json.dumps(workflow.definition))
    definition["nodes"][1]["params"]["values"] = {"greeted": False, "tags": ["a", "b"]}
    update_workflow(workflow, acting_user=alice, definition=definition)
    html = _client(alice).get(f"/workflows/{workflow.pk}/versions/").content.decode()
    assert "Changes from version 1 to 2" in html
    assert "true → false" in html.replace("&quot;", '"') or "params.values.greeted</code>: true → false" in html
    assert "[&quot;a&quot;, &quot;b&quot;]" in html and "[&#x27;a&#x27;" not in html
    assert f'href="/workflows/{workflow.pk}/"' in html


def test_the_diff_graph_draws_nodes_as_the_workflow_page_does(alice):
    from apps.workflows.services import create_workflow

    definition = {"format_version": 1, "nodes": [
        {"id": "fan", "type": "parallel", "branches": [
            {"nodes": [{"id": "a", "type": "activity", "activity": "noop"}]},
            {"nodes": [{"id": "b", "type": "activity", "activity": "log", "params": {"message": "x"}}]},
        ]},
    ]}
    wf = create_workflow(owner=alice, name="Fan", definition=definition)
    svg = _client(alice).get(f"/workflows/{wf.pk}/versions/diff.svg").content.decode()
    assert "branch 2" in svg and "activity: log" in svg
    broken = {"format_version": 1, "nodes": [{"id": "x", "type": "parallel", "branches": 3}, {"id": "y", "type": "condition", "cases": 1}]}
    update_workflow(wf, acting_user=alice, definition=broken)
    assert _client(alice).get(f"/workflows/{wf.pk}/versions/diff.svg").status_code == 200
    assert _client(alice).get(f"/workflows/{wf.pk}/versions/").status_code == 200
