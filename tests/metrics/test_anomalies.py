"""The anomaly rules on synthetic data: a slow run and a failure spike stand out, normal runs do not."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.metrics import aggregation
from apps.metrics.aggregation import Scope

from .conftest import run_metric


def test_a_synthetic_spike_is_flagged_with_its_rule(wf, api):
    now = timezone.now()
    window_start = now - timedelta(hours=6)
    # Baseline: 7 days before the window, 100 ms ± 10 (so P95 ≈ 109, median 100, MAD 5).
    for i in range(63):  # three full cycles of 90..110
        run_metric(wf, window_start - timedelta(hours=2 * i + 1), 100 + (i % 21) - 10)
    # In the window: normal runs, one a little slow (150 < 2 × P95), one spike (1,000 ms).
    for i in range(10):
        run_metric(wf, now - timedelta(minutes=20 + i), 100 + i)
    run_metric(wf, now - timedelta(minutes=40), 150)
    spike = run_metric(wf, now - timedelta(minutes=50), 1000)

    result = aggregation.anomalies(Scope.workflow(wf.pk), window_start, now)
    assert [r["execution_id"] for r in result["slow_runs"]] == [spike.execution_id]
    flagged = result["slow_runs"][0]
    assert flagged["baseline_runs"] == 63
    assert flagged["baseline_median_ms"] == 100
    assert flagged["threshold_ms"] == max(2 * flagged["baseline_p95_ms"], 100 + 3 * flagged["baseline_mad_ms"])
    assert "2 × P95" in result["rules"]["slow_run"] and "median + 3 × MAD" in result["rules"]["slow_run"]

    body = api.get("/api/v1/metrics/anomalies", {"from": window_start.isoformat(), "to": now.isoformat()}).json()
    assert [r["execution_id"] for r in body["slow_runs"]] == [spike.execution_id]


def test_no_verdict_without_enough_baseline_runs(wf):
    now = timezone.now()
    for i in range(5):
        run_metric(wf, now - timedelta(days=1, hours=i), 100)
    run_metric(wf, now - timedelta(minutes=5), 10_000)
    assert aggregation.anomalies(Scope.workflow(wf.pk), now - timedelta(hours=1), now)["slow_runs"] == []


def test_an_hour_of_failures_is_flagged(wf):
    now = timezone.now().replace(minute=30)
    window_start = now - timedelta(hours=3)
    for i in range(20):  # a failure now and then in the baseline
        run_metric(wf, window_start - timedelta(hours=5 * i + 1), 100, status="failed" if i % 4 == 0 else "completed", error_type="HttpError" if i % 4 == 0 else "")
    for i in range(6):
        run_metric(wf, now - timedelta(minutes=i + 1), 100, status="failed", error_type="HttpError")
    result = aggregation.anomalies(Scope.workflow(wf.pk), window_start, now)
    assert len(result["failure_hours"]) == 1
    assert result["failure_hours"][0]["failures"] == 6
    assert "median + 3 × MAD" in result["rules"]["failure_hour"]


def test_the_dashboard_lists_and_marks_a_failure_hour_in_the_viewers_zone(wf, alice, client):
    from zoneinfo import ZoneInfo

    hour = (timezone.now() - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    for i in range(6):
        run_metric(wf, hour + timedelta(minutes=10 + i), 100, status="failed", error_type="HttpError")
    local = hour.astimezone(ZoneInfo("America/New_York"))
    client.force_login(alice)
    html = client.get("/metrics/", {"range": "day", "tz": "America/New_York"}).content.decode()
    # The list, in New York time (not the server's UTC), with the hour it covers.
    assert f"<td>{local:%b} {local.day} {local:%H:%M}–{local + timedelta(hours=1):%H:%M}</td>" in html
    assert "6 of 6 runs failed" in html
    # The charts: a band over that hour, its tooltip in New York time too; the rule is on the page.
    assert html.count('class="anomaly-band"') >= 2
    assert f"<title>{local:%b} {local.day} {local:%H:%M}–{local + timedelta(hours=1):%H:%M}: 6 of 6 runs failed" in html
    assert "How anomalies are flagged" in html and "median + 3 × MAD" in html
