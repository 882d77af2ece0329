"""Badges in the workflow list and on the workflow page (signals, long-running loop, schedule or
trigger, last run status) and the execution page's warning when a run's history grows large."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse

from apps.executions.models import Execution
from apps.triggers.models import Schedule
from apps.workflows.services import create_workflow
from tests.ui.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def workflows(alice):
    plain = create_workflow(owner=alice, name="Plain", definition={"format_version": 1, "nodes": [{"id": "a", "type": "activity", "activity": "log", "params": {"message": "x"}}], "edges": []})
    rich = create_workflow(owner=alice, name="Rich", definition={
        "format_version": 1,
        "signals": [{"name": "approved"}],
        "nodes": [{"id": "forever", "type": "loop", "mode": "while", "long_running": True, "body": {"nodes": [{"id": "tick", "type": "timer", "duration": 5}], "edges": []}}],
        "edges": [],
    })
    Schedule.objects.create(workflow=rich, cron="0 * * * *")
    Execution.objects.create(workflow=rich, definition=rich.definition, status="failed", created_by=alice)
    return plain, rich


def test_the_list_shows_each_workflows_badges(workflows, alice):
    html = client_for(alice).get(reverse("workflows:list")).content.decode()
    rich_row = html[html.index(">Rich<"):]
    rich_row = rich_row[: rich_row.index("</tr>")]
    for text in ("signals", "long-running", "scheduled", "last run failed"):
        assert text in rich_row
    plain_row = html[html.index(">Plain<"):]
    plain_row = plain_row[: plain_row.index("</tr>")]
    assert "wf-badge" not in plain_row


def test_badges_cost_the_same_queries_for_one_workflow_or_many(workflows, alice, django_assert_max_num_queries):
    client = client_for(alice)
    client.get(reverse("workflows:list"))
    for n in range(15):
        create_workflow(owner=alice, name=f"More {n}", definition={"format_version": 1, "signals": [{"name": "s"}], "nodes": [], "edges": []})
    with django_assert_max_num_queries(16):
        client.get(reverse("workflows:list"))


def test_the_workflow_page_shows_its_badges(workflows, alice):
    _plain, rich = workflows
    html = client_for(alice).get(reverse("workflows:detail", args=[rich.pk])).content.decode()
    assert 'class="wf-badge wf-badge-last-run status-failed"' in html and "long-running" in html


def test_a_long_history_gets_a_warning_suggesting_continue_as_new(workflows, alice):
    _plain, rich = workflows
    run = Execution.objects.create(workflow=rich, definition=rich.definition, status="running", created_by=alice, last_seq=120)
    url = reverse("executions:detail", args=[run.pk])
    with override_settings(WB_HISTORY_WARN_EVENTS=100):
        html = client_for(alice).get(url).content.decode()
    assert "data-history-warning" in html and "continue-as-new" in html
    with override_settings(WB_HISTORY_WARN_EVENTS=1000):
        assert "data-history-warning" not in client_for(alice).get(url).content.decode()
