"""Schedules and webhooks start runs as the user who set them up, with that user's rights now:
revoking their share (or role) stops what they left running; setting one up needs a role that
may start runs."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from apps.accounts import roles
from apps.connectors.activities.notify import sign
from apps.sharing.services import share_workflow, unshare_workflow
from apps.triggers import services
from apps.triggers.models import Schedule
from apps.workflows.services import create_workflow

pytestmark = pytest.mark.django_db
DEFINITION = {"format_version": 1, "nodes": [{"id": "note", "type": "activity", "activity": "set", "params": {"values": {"seen": "$.input"}}}]}


@pytest.fixture
def workflow(alice, bob):
    workflow = create_workflow(owner=alice, name="triggered", definition=DEFINITION)
    share_workflow(workflow, bob, "change", acting_user=alice)
    return workflow


def test_a_schedule_stops_when_its_creator_loses_the_share(alice, bob, workflow):
    schedule = services.create_schedule(workflow, cron="* * * * *", acting_user=bob)
    assert services.run_schedule(schedule.pk).created_by == bob
    unshare_workflow(workflow, bob, acting_user=alice)
    assert services.run_schedule(schedule.pk) is None
    assert "bob, who set this up, may no longer run this workflow" in Schedule.objects.get(pk=schedule.pk).last_error


def test_a_webhook_stops_when_its_creator_loses_the_role(api_as, bob, workflow):
    created = api_as(bob).post(f"/api/v1/workflows/{workflow.pk}/webhooks", {"name": "x"}, format="json").json()
    roles.assign_role(bob, "viewer")
    body, now = json.dumps({"a": 1}).encode(), int(time.time())
    response = Client().post(
        f"/api/v1/hooks/{created['token']}", body, content_type="application/json",
        HTTP_X_WORKFLOW_SIGNATURE=sign(created["secret"], body, now), HTTP_X_WORKFLOW_TIMESTAMP=str(now),
    )
    assert response.status_code == 403 and "no role that may start runs" in response.json()["detail"]
    assert not workflow.executions.exists()


def test_a_viewer_role_cannot_set_up_triggers(api_as, alice, workflow):
    from django.contrib.auth.models import User

    vera = User.objects.create_user("vera", "vera@example.com", "vera-password-1")
    roles.assign_role(vera, "viewer")
    share_workflow(workflow, vera, "change", acting_user=alice)
    as_vera = api_as(User.objects.get(pk=vera.pk))
    assert as_vera.post(f"/api/v1/workflows/{workflow.pk}/schedules", {"cron": "* * * * *"}, format="json").status_code == 403
    assert as_vera.post(f"/api/v1/workflows/{workflow.pk}/webhooks", {"name": "x"}, format="json").status_code == 403
    assert not Schedule.objects.exists() and not workflow.webhooks.exists()
