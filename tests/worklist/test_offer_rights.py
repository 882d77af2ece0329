"""Work items go only to people who could act on them: whoever edits an approval node cannot
offer (or an admin reassign) work, and the run's data in it, to users who cannot see the workflow."""

from __future__ import annotations

import pytest

from apps.sharing.services import share_workflow
from apps.worklist.models import WorkItem

pytestmark = pytest.mark.worker


def test_an_approval_is_not_offered_to_a_stranger_or_an_unshared_team(worker, approval_workflow, offered, bob, charlie):
    from django.contrib.auth.models import Group

    outsiders = Group.objects.create(name="outsiders")
    charlie.groups.add(outsiders)
    workflow = approval_workflow(users=["bob", "charlie"], groups=["outsiders"])
    _, item = offered(workflow)
    assert list(item.offered_users.values_list("username", flat=True)) == ["bob"]
    assert not item.offered_groups.exists()
    assert "charlie" in item.notes and "outsiders" in item.notes
    assert not WorkItem.objects.filter(offered_users=charlie).exists()


def test_the_stranger_sees_nothing_in_their_inbox(worker, approval_workflow, offered, api_as, charlie):
    _, item = offered(approval_workflow(users=["charlie"]))
    assert api_as(charlie).get("/api/v1/work-items/").json()["results"] == []
    assert api_as(charlie).post(f"/api/v1/work-items/{item.pk}/claim").status_code in (403, 404)


def test_reassigning_to_someone_who_cannot_see_the_workflow_is_refused(worker, approval_workflow, offered, api, alice, charlie):
    workflow = approval_workflow(users=["bob"])
    _, item = offered(workflow)
    refused = api.post(f"/api/v1/work-items/{item.pk}/reassign", {"user": "charlie"}, format="json")
    assert refused.status_code == 400 and "user" in refused.json()
    share_workflow(workflow, charlie, "view", acting_user=alice)
    assert api.post(f"/api/v1/work-items/{item.pk}/reassign", {"user": "charlie"}, format="json").status_code == 200
