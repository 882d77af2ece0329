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
