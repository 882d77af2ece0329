"""The dashboard, the workflow panel fragment and the admin operations page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.metrics.charts import format_ms

from .conftest import make_workflow, run_metric


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
    wf = make_workflow(alice, "<script>alert(1)</script>")
    run_metric(wf, timezone.now() - timedelta(minutes=5), 100, status="failed", error_type="<img src=x onerror=alert(1)>")
    html = logged_in(alice).get("/metrics/", {"range": "day"}).content.decode()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_dashboard_shows_a_bad_filter_instead_of_failing(logged_in, alice):
    response = logged_in(alice).get("/metrics/", {"tz": "Nowhere/Land"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<strong>Time zone</strong>: unknown time zone" in html
    assert 'value="Nowhere/Land" size="18" aria-invalid="true"' in html  # what was typed stays, marked


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


#
# What a user reads: counts, not projections; durations for people; empty states; errors
#


@pytest.fixture
def two_minutes_into_an_hour(monkeypatch):
    """Now is 2 minutes past an hour (yesterday's, so every run made for it is in the past)."""
    hour = (timezone.now() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    monkeypatch.setattr(timezone, "now", lambda: hour + timedelta(minutes=2))
    return hour


def test_a_partial_current_hour_shows_its_runs_not_a_projection(logged_in, alice, wf, two_minutes_into_an_hour):
    hour = two_minutes_into_an_hour
    for i in range(17):
        run_metric(wf, hour + timedelta(seconds=5 + i * 6), 100)
    html = logged_in(alice).get("/metrics/", {"range": "day", "bucket": "hour", "tz": "UTC"}).content.decode()
    assert "Runs per hour" in html
    # The current hour's bar holds the 17 runs, drawn as partial; nothing reads 510 (17 × 30) per hour.
    assert f"{hour:%b} {hour.day} {hour:%H}:00–{hour:%H}:02 (partial) · runs finished: 17</title>" in html
    assert "510/h" not in html and "510.0" not in html
    assert "0.71/h" in html and "average over 24 h" in html  # the card: 17 runs over the day's 24 hours

    custom = logged_in(alice).get("/metrics/", {"range": "custom", "from": hour.strftime("%Y-%m-%dT%H:%M"), "to": "", "tz": "UTC"}).content.decode()
    assert "17 in 2 min" in custom and "no hourly rate" in custom


@pytest.mark.parametrize(
    "ms, text",
    [(0, "0 ms"), (0.42, "0.42 ms"), (85, "85 ms"), (123.456, "123 ms"), (999.6, "1.0 s"), (1234, "1.2 s"), (42_400, "42 s"),
     (184_000, "3 min 4 s"), (7_500_000, "2 h 5 min"), (None, "—")],
)
def test_durations_read_like_people_write_them(ms, text):
    assert format_ms(ms) == text


def test_the_dashboard_and_the_panel_format_durations(logged_in, alice, wf):
    now = timezone.now()
    for i, d in enumerate([85.123, 90.456, 1234.567, 184_000.891]):
        run_metric(wf, now - timedelta(minutes=5 + i), d, steps=[{"node_id": "fetch", "duration_ms": d * 0.5, "queue_wait_ms": 3.456}])
    client = logged_in(alice)
    for html in (client.get("/metrics/", {"range": "day"}).content.decode(), client.get(f"/metrics/workflow/{wf.pk}/panel").content.decode()):
        assert not re.search(r"\d\.\d{2,} ?ms", html)  # no "123.456 ms"
        assert "663 ms" in html  # P50 of 85, 90, 1235, 184001 ms: (90.456 + 1234.567) / 2 = 662.5
        assert "2 min 37 s" in html  # P95: 1234.567 + 0.85 × (184000.891 − 1234.567) = 156586 ms
    html = client.get("/metrics/", {"range": "day"}).content.decode()
    assert "3 ms" in html  # queue wait
    assert re.search(r">\s*\d+ (ms|s)<", html)  # chart ticks carry units


def test_a_new_user_without_workflows_is_told_what_to_do(logged_in, charlie):
    html = logged_in(charlie).get("/metrics/").content.decode()
    assert "No workflows yet" in html and "Create a workflow or start from a template" in html
    assert "<svg" not in html and "None" not in html


def test_a_workflow_without_runs_says_so_on_the_dashboard_and_the_panel(logged_in, alice, wf):
    client = logged_in(alice)
    html = client.get("/metrics/").content.decode()
    assert "No finished runs yet" in html and "<svg" not in html and "None" not in html
    panel = client.get(f"/metrics/workflow/{wf.pk}/panel").content.decode()
    assert "No finished runs yet" in panel and "Nothing has run to the end for this workflow yet" in panel
    assert "<svg" not in panel and "None" not in panel


def test_runs_outside_the_range_are_pointed_to(logged_in, alice, wf):
    run_metric(wf, timezone.now() - timedelta(days=3), 100)
    html = logged_in(alice).get("/metrics/", {"range": "hour"}).content.decode()
    assert "No runs finished in the last hour" in html
    assert "3\xa0days ago" in html and "Show the last week" in html and "range=week" in html


def test_a_custom_range_error_names_the_field_and_keeps_what_was_typed(logged_in, alice, wf):
    run_metric(wf, timezone.now() - timedelta(minutes=5), 100)
    html = logged_in(alice).get("/metrics/", {"range": "custom", "from": "2026-03-02T10:00", "to": "2026-03-01T10:00"}).content.decode()
    assert '<strong>To</strong>: must be later than the start (from). Showing the last day instead.' in html
    assert 'name="to" value="2026-03-01T10:00" aria-invalid="true"' in html
    assert 'name="from" value="2026-03-02T10:00">' in html
    assert 'value="custom" checked' in html
    bad_bucket = logged_in(alice).get("/metrics/", {"range": "month", "bucket": "minute"}).content.decode()
    assert "<strong>Bucket</strong>: more than 5000 minute buckets" in bad_bucket


def test_the_panels_range_links_keep_the_viewers_time_zone(logged_in, alice, wf):
    run_metric(wf, timezone.now() - timedelta(hours=2), 250)
    html = logged_in(alice).get(f"/metrics/workflow/{wf.pk}/panel", {"tz": "America/New_York"}).content.decode()
    assert "?range=day&amp;tz=America/New_York" in html and "?range=month&amp;tz=America/New_York" in html
