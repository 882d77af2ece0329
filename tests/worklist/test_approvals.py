"""Approvals on the real worker: offer, claim, decide, decline, reassign, expire, withdraw."""

from __future__ import annotations

import pytest

from apps.comments.models import Notification
from apps.sharing.services import share_workflow
from apps.worklist.models import WorkItem
from tests.helpers import wait_for, wait_until

pytestmark = pytest.mark.worker


def test_an_approval_is_offered_to_a_group_claimed_once_and_approved(worker, approval_workflow, offered, alice, bob, charlie, api_as):
    execution, item = offered(approval_workflow(groups=["builders"]))
    assert item.title == "Approve order A-1" and item.description == "Order A-1 for 120 EUR"
    assert item.state == "offered" and item.outcomes == ["approve", "reject"]
    as_alice, as_bob, as_charlie = api_as(alice), api_as(bob), api_as(charlie)
    assert [i["id"] for i in as_bob.get("/api/v1/work-items").json()["results"]] == [item.pk]
    assert [i["id"] for i in as_alice.get("/api/v1/work-items").json()["results"]] == [item.pk]
    assert as_charlie.get("/api/v1/work-items").json()["results"] == []
    assert as_charlie.get(f"/api/v1/work-items/{item.pk}").status_code == 404
    assert as_charlie.post(f"/api/v1/work-items/{item.pk}/claim").status_code == 404

    response = as_bob.post(f"/api/v1/work-items/{item.pk}/claim")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "claimed" and response.json()["claimed_by"] == "bob"
    second = as_alice.post(f"/api/v1/work-items/{item.pk}/claim")
    assert second.status_code == 409 and "bob" in second.json()["detail"]
    assert as_alice.get("/api/v1/work-items").json()["results"] == []  # no longer offered to her
    assert as_alice.post(f"/api/v1/work-items/{item.pk}/complete", {"decision": "approve"}, format="json").status_code == 409

    assert as_bob.post(f"/api/v1/work-items/{item.pk}/start").json()["state"] == "started"
    response = as_bob.post(f"/api/v1/work-items/{item.pk}/complete", {"decision": "approve", "comment": "fine"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "completed" and response.json()["decision"] == "approve"
    execution = wait_for(execution)
    assert execution.status == "completed"
    assert execution.variables["state"] == "shipped" and execution.variables["approver"] == "bob"
    assert execution.variables["review"] == {"decision": "approve", "comment": "fine", "by": "bob"}
    assert {s.node_id: s.status for s in execution.steps.all()}["refuse"] == "skipped"
    assert as_bob.post(f"/api/v1/work-items/{item.pk}/complete", {"decision": "reject"}, format="json").status_code == 409
    # Both team members were told, in the app.
    wait_until(lambda: Notification.objects.filter(kind="approval", recipient__in=[alice, bob]).count() == 2, message="notifications")


def test_claiming_an_item_you_already_hold_says_so_in_plain_words(worker, approval_workflow, offered, bob, api_as):
    execution, item = offered(approval_workflow(users=["bob"]))
    as_bob = api_as(bob)
    assert as_bob.post(f"/api/v1/work-items/{item.pk}/claim").status_code == 200
    again = as_bob.post(f"/api/v1/work-items/{item.pk}/claim")
    assert again.status_code == 409
    assert again.json()["detail"] == "you already hold the work item (it is claimed)"  # was "cannot be claimd now"


def test_a_rejection_takes_the_reject_branch(worker, approval_workflow, offered, bob, api_as):
    execution, item = offered(approval_workflow(users=["bob"]))
    as_bob = api_as(bob)
    as_bob.post(f"/api/v1/work-items/{item.pk}/claim")
    response = as_bob.post(f"/api/v1/work-items/{item.pk}/complete", {"decision": "reject", "comment": "too expensive"}, format="json")
    assert response.status_code == 200, response.content
    execution = wait_for(execution)
    assert execution.status == "completed"
    assert execution.variables["state"] == "refused" and execution.variables["why"] == "too expensive"
    assert {s.node_id: s.status for s in execution.steps.all()}["ship"] == "skipped"


def test_a_decision_outside_the_outcomes_is_refused_naming_the_field(worker, approval_workflow, offered, bob, api_as):
    execution, item = offered(approval_workflow(users=["bob"], outcomes=["approve", "reject", "escalate"]))
    as_bob = api_as(bob)
    as_bob.post(f"/api/v1/work-items/{item.pk}/claim")
    response = as_bob.post(f"/api/v1/work-items/{item.pk}/complete", {"decision": "maybe"}, format="json")
    assert response.status_code == 400 and "decision" in response.json()
    assert "escalate" in response.json()["decision"][0]
    item.refresh_from_db()
    assert item.state == "claimed"
    # A custom outcome without a route follows the ordinary edges (none here): the run just completes.
    assert as_bob.post(f"/api/v1/work-items/{item.pk}/complete", {"decision": "escalate"}, format="json").status_code == 200
    assert wait_for(execution).variables["review"]["decision"] == "escalate"


def test_an_item_nobody_decides_expires_onto_the_timeout_path(worker, approval_workflow, offered):
    execution, item = offered(approval_workflow(users=["bob"], due_in=1))
    execution = wait_for(execution)
    assert execution.status == "completed" and execution.variables["state"] == "expired"
    wait_until(lambda: WorkItem.objects.get(pk=item.pk).state == "expired", message="the item to expire")


def test_an_expired_item_can_no_longer_be_decided(worker, approval_workflow, offered, bob, api_as):
    execution, item = offered(approval_workflow(users=["bob"], due_in=60))
    as_bob = api_as(bob)
    as_bob.post(f"/api/v1/work-items/{item.pk}/claim")
    from apps.worklist.services import expire_work_item

    assert expire_work_item(item.pk, force=True)
    assert wait_for(execution).variables["state"] == "expired"
    assert as_bob.post(f"/api/v1/work-items/{item.pk}/complete", {"decision": "approve"}, format="json").status_code == 409


def test_declining_moves_the_offer_on_to_the_others(worker, approval_workflow, offered, alice, bob, api_as):
    execution, item = offered(approval_workflow(users=["alice", "bob"]))
    as_alice, as_bob = api_as(alice), api_as(bob)
    response = as_bob.post(f"/api/v1/work-items/{item.pk}/decline")
    assert response.status_code == 200, response.content
    assert as_bob.get("/api/v1/work-items").json()["results"] == []
    assert as_bob.post(f"/api/v1/work-items/{item.pk}/claim").status_code == 403
    assert [i["id"] for i in as_alice.get("/api/v1/work-items").json()["results"]] == [item.pk]
    wait_until(lambda: Notification.objects.filter(recipient=alice, kind="approval", text__contains="declined by bob").exists(), message="alice told")
    # Alice claims then declines too: nobody is left, and the owner (alice) hears about it.
    as_alice.post(f"/api/v1/work-items/{item.pk}/claim")
    assert as_alice.post(f"/api/v1/work-items/{item.pk}/decline").json()["state"] == "offered"
    wait_until(lambda: Notification.objects.filter(recipient=alice, text__startswith="Nobody is left").exists(), message="the owner told")
    execution.refresh_from_db()
    assert execution.status in ("running", "waiting")


def test_a_workflow_admin_reassigns_and_the_new_holder_decides(worker, approval_workflow, offered, alice, bob, charlie, api_as):
    workflow = approval_workflow(users=["bob"])
    share_workflow(workflow, charlie, "view", acting_user=alice)  # work goes only to people who can see the workflow
    execution, item = offered(workflow)
    as_alice, as_bob, as_charlie = api_as(alice), api_as(bob), api_as(charlie)
    refused = as_bob.post(f"/api/v1/work-items/{item.pk}/reassign", {"user": "charlie"}, format="json")
    assert refused.status_code == 403  # bob may decide, not reassign
    assert as_alice.post(f"/api/v1/work-items/{item.pk}/reassign", {"user": "nobody"}, format="json").json().keys() >= {"user"}
    response = as_alice.post(f"/api/v1/work-items/{item.pk}/reassign", {"user": "charlie"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["claimed_by"] == "charlie" and response.json()["state"] == "claimed"
    assert [i["id"] for i in as_charlie.get("/api/v1/work-items").json()["results"]] == [item.pk]
    assert as_charlie.post(f"/api/v1/work-items/{item.pk}/complete", {"decision": "approve"}, format="json").status_code == 200
    assert wait_for(execution).variables["approver"] == "charlie"
    wait_until(lambda: Notification.objects.filter(recipient=charlie, text__contains="assigned to you by alice").exists(), message="charlie told")


def test_cancelling_the_run_withdraws_its_item(worker, approval_workflow, offered, alice, bob, api_as):
    from apps.executions.engine.orchestrator import cancel_execution

    execution, item = offered(approval_workflow(users=["bob"]))
    cancel_execution(execution, acting_user=alice)
    item.refresh_from_db()
    assert item.state == "withdrawn"
    assert api_as(bob).get("/api/v1/work-items").json()["results"] == []
    assert api_as(bob).post(f"/api/v1/work-items/{item.pk}/claim").status_code in (403, 409)


def test_unknown_assignees_are_noted_not_fatal(worker, approval_workflow, offered, bob):
    execution, item = offered(approval_workflow(users=["ghost", "bob"], groups=["nobody-here"]))
    assert "ghost" in item.notes and "nobody-here" in item.notes
    assert list(item.offered_users.values_list("username", flat=True)) == ["bob"]
    execution.refresh_from_db()
    assert execution.status in ("running", "waiting")
