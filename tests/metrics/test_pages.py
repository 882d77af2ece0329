"""The dashboard, the workflow panel fragment and the admin operations page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from .conftest import run_metric


@pytest.fixture
def logged_in(client: Client):
    def login(user) -> Client:
        client.force_login(user)
        return client

    return login


def test_the_dashboard_renders_charts_lists_and_the_csv_link(logged_in, alice, wf):
    now = timezone.now()
    for i in range(30):
        run_metric(wf, now - timedelta(hours=i % 20, minutes=i), 100 + i * 5, status="failed" if i % 7 == 0 else "completed", error_type="HttpError" if i % 7 == 0 else "")
    response = logged_in(alice).get("/metrics/", {"range": "day"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") == 4
    assert "Run duration percentiles" in html and "Runs per hour" in html and "Queue wait" in html
    assert "HttpError" in html
    assert "Order intake" in html
    assert "/api/v1/metrics/export.csv?" in html
    assert "style=" not in html  # the CSP allows no inline styles


def test_the_dashboard_escapes_user_text_in_charts(logged_in, alice):
    from .conftest import make_workflow

    wf = make_workflow(alice, "<script>alert(1)</script>")
    run_metric(wf, timezone.now() - timedelta(minutes=5), 100, status="failed", error_type="<img src=x onerror=alert(1)>")
    html = logged_in(alice).get("/metrics/", {"range": "day"}).content.decode()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_dashboard_shows_a_bad_filter_instead_of_failing(logged_in, alice):
    response = logged_in(alice).get("/metrics/", {"tz": "Nowhere/Land"})
    assert response.status_code == 200
    assert "unknown time zone" in response.content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client: Client, wf):
    assert client.get("/metrics/").status_code == 302
    assert client.get(f"/metrics/workflow/{wf.pk}/panel").status_code == 302


def test_the_panel_renders_for_the_owner_and_404s_for_charlie(logged_in, alice, charlie, wf):
    run_metric(wf, timezone.now() - timedelta(hours=2), 250)
    response = logged_in(alice).get(f"/metrics/workflow/{wf.pk}/panel")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="metrics-panel"' in html and "<svg" in html and "<html" not in html
    assert logged_in(charlie).get(f"/metrics/workflow/{wf.pk}/panel").status_code == 404


def test_charlies_dashboard_does_not_show_alices_workflows(logged_in, charlie, wf):
    run_metric(wf, timezone.now() - timedelta(minutes=5), 100)
    html = logged_in(charlie).get("/metrics/", {"range": "day"}).content.decode()
    assert "Order intake" not in html
    assert logged_in(charlie).get("/metrics/", {"workflow": wf.pk}).status_code == 404


def test_the_operations_page_lists_stuck_runs_with_bulk_action_links(logged_in, admin_user, alice, wf):
    from apps.executions.models import Execution

    stuck = Execution.objects.create(workflow=wf, definition=wf.definition, status="running")
    Execution.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - timedelta(hours=2), created_at=timezone.now() - timedelta(hours=2))
    response = logged_in(admin_user).get("/admin/metrics/operationspage/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Stuck runs" in html and "Queue depths" in html and "Workers" in html
    assert f"id__in={stuck.pk}" in html
    assert "/admin/executions/execution/?" in html


def test_the_operations_page_is_for_staff_only(logged_in, alice):
    response = logged_in(alice).get("/admin/metrics/operationspage/")
    assert response.status_code == 302
