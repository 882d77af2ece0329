"""The inbox page (htmx claim and decide), the nav count, and the admin actions."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.worklist.models import WorkItem
from tests.helpers import wait_for

pytestmark = pytest.mark.worker

HTMX = {"HTTP_HX_REQUEST": "true"}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_inbox_page_claims_and_decides_with_htmx(worker, approval_workflow, offered, bob, charlie):
    execution, item = offered(approval_workflow(groups=["builders"]))
    page = _client(bob).get("/inbox/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Approve order A-1" in html and f"/inbox/{item.pk}/claim" in html
    assert 'aria-label="1 waiting"' in html  # the nav count
    fragment = _client(bob).post(f"/inbox/{item.pk}/claim", **HTMX)
    assert fragment.status_code == 200 and b'value="approve"' in fragment.content and b"<html" not in fragment.content
    done = _client(bob).post(f"/inbox/{item.pk}/complete", {"decision": "approve", "comment": "ok"}, **HTMX)
    assert done.status_code == 200 and b"Decision: <strong>approve</strong>" in done.content
    assert wait_for(execution).variables["state"] == "shipped"
    assert "Approve order A-1" not in _client(charlie).get("/inbox/").content.decode()
    assert _client(charlie).post(f"/inbox/{item.pk}/claim", **HTMX).status_code == 404


def test_a_bad_decision_from_the_page_is_an_error_not_a_change(worker, approval_workflow, offered, bob):
    execution, item = offered(approval_workflow(users=["bob"]))
    _client(bob).post(f"/inbox/{item.pk}/claim", **HTMX)
    response = _client(bob).post(f"/inbox/{item.pk}/complete", {"decision": "perhaps"}, **HTMX)
    assert response.status_code == 422 and b"not one of the outcomes" in response.content
    assert WorkItem.objects.get(pk=item.pk).state == "claimed"


def test_the_admin_lists_items_and_completes_them(worker, approval_workflow, offered, admin_user):
    execution, item = offered(approval_workflow(users=["bob"]))
    client = _client(admin_user)
    assert client.get("/admin/worklist/workitem/?state__exact=offered").status_code == 200
    assert client.get(f"/admin/worklist/workitem/{item.pk}/change/").status_code == 200
    response = client.post("/admin/worklist/workitem/", {"action": "complete_items", "_selected_action": [item.pk], "decision": "reject", "comment": "ops"})
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.state, item.decision, item.claimed_by, item.comment) == ("completed", "reject", admin_user, "ops")
    assert wait_for(execution).variables["state"] == "refused"


def test_the_admin_reassigns_to_me_and_expires(worker, approval_workflow, offered, admin_user):
    execution, item = offered(approval_workflow(users=["bob"], due_in=600))
    client = _client(admin_user)
    client.post("/admin/worklist/workitem/", {"action": "reassign_to_me", "_selected_action": [item.pk]})
    item.refresh_from_db()
    assert (item.state, item.claimed_by) == ("claimed", admin_user)
    client.post("/admin/worklist/workitem/", {"action": "expire_items", "_selected_action": [item.pk]})
    assert WorkItem.objects.get(pk=item.pk).state == "expired"
    assert wait_for(execution).variables["state"] == "expired"
