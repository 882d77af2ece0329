"""Operator actions on executions in the admin say what they did and what they left alone."""

from __future__ import annotations

import json

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


def test_a_run_with_thousands_of_steps_and_events_lists_the_newest_inline_and_all_through_links(admin_user, workflow):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.executions.admin import INLINE_ROWS_MAX
    from apps.executions.models import ExecutionEvent, StepRun

    small = make_run(workflow, status="completed")
    html = client_for(admin_user).get(f"/admin/executions/execution/{small.pk}/change/").content.decode()
    assert 'name="steps-TOTAL_FORMS" value="2"' in html and "2 step runs" in html and "listed below" not in html
    big = make_run(workflow, status="completed")
    StepRun.objects.bulk_create([StepRun(execution=big, node_id="tick", node_type="activity", activity="noop", scope=f"loop[{i}]/", status="completed") for i in range(250)])
    ExecutionEvent.objects.bulk_create([ExecutionEvent(execution=big, seq=1000 + i, type="step_completed", node_id="tick") for i in range(300)])
    big.last_seq = 1299
    big.save(update_fields=["last_seq"])
    with CaptureQueriesContext(connection) as queries:
        response = client_for(admin_user).get(f"/admin/executions/execution/{big.pk}/change/")
    html = response.content.decode()
    assert response.status_code == 200
    # The newest rows only, each inline in one query with a LIMIT.
    assert f'name="steps-TOTAL_FORMS" value="{INLINE_ROWS_MAX}"' in html
    assert f'name="events-TOTAL_FORMS" value="{INLINE_ROWS_MAX}"' in html
    assert "loop[249]/" in html and "loop[0]/" not in html  # the newest steps, not the first
    assert ">1299<" in html and ">1000<" not in html
    inline_reads = [q["sql"] for q in queries.captured_queries if 'FROM "executions_steprun"' in q["sql"] or 'FROM "executions_executionevent"' in q["sql"]]
    assert inline_reads and all("LIMIT" in sql or "COUNT(" in sql for sql in inline_reads), inline_reads
    assert "252 step runs" in html and "1299 events" in html and "follow the link for all" in html
    assert f"/admin/executions/steprun/?execution__id__exact={big.pk}" in html
    listing = client_for(admin_user).get(f"/admin/executions/steprun/?execution__id__exact={big.pk}")
    assert listing.status_code == 200 and "252 step runs" in listing.content.decode()  # the filtered list counts them


@pytest.mark.parametrize("path", ["/admin/executions/timer/add/", "/admin/comments/activity/add/", "/admin/comments/notification/add/"])
def test_what_the_application_writes_cannot_be_added_by_hand(admin_user, path):
    assert client_for(admin_user).get(path).status_code == 403


def test_a_definition_saved_in_the_admin_goes_through_the_editing_service(admin_user, workflow):
    from apps.accounts.models import AuditLog
    from apps.workflows.editing import revision_of

    before = revision_of(workflow)
    url = f"/admin/workflows/workflow/{workflow.pk}/change/"
    form = client_for(admin_user).get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: value for name, value in data.items() if value is not None}
    data["definition"] = json.dumps({**workflow.definition, "description": "edited by an operator"})
    response = client_for(admin_user).post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    workflow.refresh_from_db()
    assert workflow.definition["description"] == "edited by an operator"
    assert revision_of(workflow) != before  # a new version, as the builder and the API make
    assert AuditLog.objects.filter(action="definition_edited", target=f"workflow {workflow.pk}").exists()
