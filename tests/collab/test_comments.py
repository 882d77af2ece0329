"""Comments (threads, mentions, safe rendering, own-only edits), activity feeds, notifications."""

from __future__ import annotations

import pytest
from django.core import mail

from apps.comments.models import Activity, Comment, Notification
from apps.comments.services import notify
from apps.executions.models import Execution
from apps.sharing.services import share_workflow
from apps.versions.services import restore_version, versions_of
from apps.workflows.services import update_workflow

from .conftest import DEFINITION

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared(alice, bob, workflow):
    share_workflow(workflow, bob, "view", acting_user=alice)
    return workflow


def _post(client, workflow, **data):
    return client.post(f"/api/v1/workflows/{workflow.pk}/comments/", data, format="json")


def test_threaded_replies_on_a_node(api, api_as, shared):
    top = _post(api, shared, body="Why a log step?", node_id="greet").json()
    reply = _post(api_as(shared.owner), shared, body="Because.", parent_id=top["id"])
    assert reply.status_code == 201, reply.content
    assert reply.json()["parent"] == top["id"] and reply.json()["node_id"] == "greet"
    listed = api.get(f"/api/v1/workflows/{shared.pk}/comments/?node_id=greet").json()
    assert [(c["id"], c["parent"]) for c in listed] == [(top["id"], None), (reply.json()["id"], top["id"])]


def test_a_reply_notifies_the_parent_author_and_a_comment_the_owner(api_as, alice, bob, shared, django_capture_on_commit_callbacks):
    top = _post(api_as(bob), shared, body="Looks good").json()
    assert Notification.objects.filter(recipient=alice, kind="comment").count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        _post(api_as(alice), shared, body="Thanks", parent_id=top["id"])
    assert Notification.objects.filter(recipient=bob, kind="reply").count() == 1
    assert mail.outbox and "bob@example.com" in mail.outbox[-1].to


def test_mentions_notify_only_users_who_can_see_the_workflow(api, bob, charlie, shared):
    _post(api, shared, body="@bob and @charlie, have a look")
    assert Notification.objects.filter(recipient=bob, kind="mention").count() == 1
    assert not Notification.objects.filter(recipient=charlie).exists()


def test_html_is_escaped_and_a_small_markdown_subset_rendered(api, shared):
    body = "<script>alert(1)</script> **bold** [docs](https://example.com) [bad](javascript:alert(1))"
    html = _post(api, shared, body=body).json()["body_html"]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<strong>bold</strong>" in html and '<a href="https://example.com"' in html
    assert 'href="javascript' not in html


def test_only_the_author_edits_or_deletes(api, api_as, shared):
    comment = _post(api_as(shared.owner), shared, body="first").json()
    url = f"/api/v1/workflows/{shared.pk}/comments/{comment['id']}/"
    assert api_as(shared.owner).patch(url, {"body": "edited"}, format="json").json()["edited_at"]
    from django.contrib.auth.models import User

    bob = User.objects.get(username="bob")
    assert api_as(bob).patch(url, {"body": "hijack"}, format="json").status_code == 403
    assert api_as(bob).delete(url).status_code == 403
    assert Comment.objects.get(pk=comment["id"]).body == "edited"
    assert api_as(shared.owner).delete(url).status_code == 204
    assert api.get(url).json()["is_deleted"] is True and api.get(url).json()["body_html"] == ""


def test_a_stranger_cannot_read_or_comment(api, api_as, charlie, workflow):
    comment = _post(api, workflow, body="private").json()
    client = api_as(charlie)
    assert client.get(f"/api/v1/workflows/{workflow.pk}/comments/").status_code == 404
    assert _post(client, workflow, body="hi").status_code == 404
    assert client.delete(f"/api/v1/workflows/{workflow.pk}/comments/{comment['id']}/").status_code == 404
    assert client.get(f"/api/v1/workflows/{workflow.pk}/activity/").status_code == 404
    assert client.get("/api/v1/activity/").json()["count"] == 0


def test_activity_entries_for_created_edited_ran_failed_shared_commented_restored(api, alice, bob, workflow):
    update_workflow(workflow, acting_user=alice, description="changed")
    share_workflow_via_api = api.post(f"/api/v1/workflows/{workflow.pk}/shares/", {"user": "bob", "level": "view"}, format="json")
    assert share_workflow_via_api.status_code == 201
    _post(api, workflow, body="note")
    first = versions_of(workflow).last()
    restore_version(workflow, first, acting_user=alice)
    run = Execution.objects.create(workflow=workflow, definition=DEFINITION, status="running", created_by=alice)
    run.status = "failed"
    run.save(update_fields=["status"])
    run.save(update_fields=["status"])  # saved twice: still one entry
    verbs = [a["verb"] for a in api.get(f"/api/v1/workflows/{workflow.pk}/activity/").json()["results"]]
    assert sorted(verbs) == sorted(["created", "edited", "shared", "commented", "restored", "ran", "failed"])
    assert Activity.objects.filter(verb="failed").count() == 1


def test_per_user_feed(api, api_as, alice, bob, shared):
    _post(api_as(bob), shared, body="from bob")
    feed = api.get("/api/v1/activity/?user=bob").json()["results"]
    assert [(a["actor"], a["verb"]) for a in feed] == [("bob", "commented")]


def test_unread_counts_mark_read_and_preferences(api_as, alice, bob, django_capture_on_commit_callbacks):
    client = api_as(bob)
    for i in range(3):
        notify(bob, "approval", f"approve {i}", "/x")
    assert client.get("/api/v1/notifications/unread-count/").json() == {"unread": 3}
    first = client.get("/api/v1/notifications/").json()["results"][0]
    assert client.post(f"/api/v1/notifications/{first['id']}/read/").json()["read"] is True
    assert client.get("/api/v1/notifications/unread-count/").json() == {"unread": 2}
    assert client.post("/api/v1/notifications/read/", {}, format="json").json() == {"marked": 2, "unread": 0}
    assert api_as(alice).get("/api/v1/notifications/").json()["count"] == 0
    assert api_as(alice).post(f"/api/v1/notifications/{first['id']}/read/").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        notify(bob, "approval", "loud", "/x")
    assert mail.outbox[-1].to == ["bob@example.com"] and "loud" in mail.outbox[-1].body
    sent = len(mail.outbox)
    assert client.patch("/api/v1/notifications/preferences/", {"email_approval": False}, format="json").json()["email_approval"] is False
    with django_capture_on_commit_callbacks(execute=True):
        notify(bob, "approval", "quiet", "/x")
    assert len(mail.outbox) == sent


def test_anonymous_gets_nothing(anon_api, workflow):
    for url in ("/api/v1/notifications/", "/api/v1/notifications/unread-count/", "/api/v1/activity/", f"/api/v1/workflows/{workflow.pk}/comments/"):
        assert anon_api.get(url).status_code in (401, 403)


def test_a_comment_on_a_node_the_workflow_does_not_have_is_refused(api, workflow):
    response = api.post(f"/api/v1/workflows/{workflow.pk}/comments/", {"body": "typo?", "node_id": "greeet"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"node_id": ["There is no node “greeet” in this workflow."]}
    assert api.post(f"/api/v1/workflows/{workflow.pk}/comments/", {"body": "fine", "node_id": "greet"}, format="json").status_code == 201


def test_the_comment_page_offers_the_workflows_nodes_and_refuses_others(alice, workflow):
    from django.test import Client

    client = Client()
    client.force_login(alice)
    url = f"/workflows/{workflow.pk}/comments/"
    html = client.get(url).content.decode()
    assert '<option value="greet">greet</option>' in html and '<option value="done">done</option>' in html
    response = client.post(url, {"action": "add", "body": "x", "node_id": "ghost"})
    assert response.status_code == 422 and "There is no node “ghost”" in response.content.decode()
    assert client.post(url, {"action": "add", "body": "x", "node_id": "done"}).status_code == 302
