"""Operator actions on executions in the admin say what they did and what they left alone."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from .conftest import client_for, make_run

pytestmark = pytest.mark.django_db


def _act(admin_user, action: str, ids: list[int]) -> list[tuple[str, str]]:
    response = client_for(admin_user).post("/admin/executions/execution/", {"action": action, "_selected_action": ids, "index": 0})
    assert response.status_code == 302
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def test_pausing_finished_runs_says_they_were_left_alone(admin_user, workflow):
    finished = make_run(workflow, status="failed")
    assert _act(admin_user, "pause_selected", [finished.pk]) == [("warning", "Paused 0 run(s); 1 was not running, left as it is.")]


def test_resuming_runs_that_are_not_paused_says_so(admin_user, workflow):
    finished = make_run(workflow, status="completed")
    assert _act(admin_user, "resume_selected", [finished.pk]) == [("warning", "Resumed 0 run(s); 1 was not paused, left as it is.")]


def test_a_run_with_thousands_of_steps_lists_them_through_a_link_not_inline(admin_user, workflow):
    from apps.executions.models import StepRun

    small = make_run(workflow, status="completed")
    html = client_for(admin_user).get(f"/admin/executions/execution/{small.pk}/change/").content.decode()
    assert "steps-TOTAL_FORMS" in html and "2 step runs" in html
    big = make_run(workflow, status="completed")
    StepRun.objects.bulk_create([StepRun(execution=big, node_id="tick", node_type="activity", activity="noop", scope=f"loop[{i}]/", status="completed") for i in range(250)])
    response = client_for(admin_user).get(f"/admin/executions/execution/{big.pk}/change/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "steps-TOTAL_FORMS" not in html and "252 step runs" in html and "too many to list on this page" in html
    assert f"/admin/executions/steprun/?execution__id__exact={big.pk}" in html
    listing = client_for(admin_user).get(f"/admin/executions/steprun/?execution__id__exact={big.pk}")
    assert listing.status_code == 200 and "252 step runs" in listing.content.decode()  # the filtered list counts them


@pytest.mark.parametrize("path", ["/admin/executions/timer/add/", "/admin/comments/activity/add/", "/admin/comments/notification/add/"])
def test_what_the_application_writes_cannot_be_added_by_hand(admin_user, path):
    assert client_for(admin_user).get(path).status_code == 403
