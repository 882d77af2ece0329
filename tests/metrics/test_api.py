"""GET /api/v1/metrics/...: content, filters, CSV, and permission scoping (charlie sees nothing of alice's)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from .conftest import make_workflow, run_metric


@pytest.fixture
def alices_runs(wf):
    now = timezone.now()
    for i, d in enumerate([100, 200, 300, 400]):
        run_metric(wf, now - timedelta(minutes=10 + i), d, steps=[{"node_id": "fetch", "activity": "http.request", "duration_ms": d * 0.8, "queue_wait_ms": 3.0}, {"node_id": "note", "activity": "log", "duration_ms": 1}])
    run_metric(wf, now - timedelta(minutes=20), 500, status="failed", error_type="HttpError")
    run_metric(wf, now - timedelta(minutes=21), 600, status="failed", error_type="HttpError")
    run_metric(wf, now - timedelta(minutes=22), 700, status="cancelled", error_type="Cancelled")
    run_metric(wf, now - timedelta(days=1, minutes=30), 100)  # the previous period
    return wf


def test_summary_counts_rates_percentiles_and_trend(api, alices_runs):
    body = api.get("/api/v1/metrics/summary", {"range": "day"}).json()
    s = body["summary"]
    assert (s["count"], s["successes"], s["failures"], s["cancelled"]) == (7, 4, 2, 1)
    assert s["success_rate"] == round(4 / 7, 4)
    assert s["p50_ms"] == 400 and s["exact"] is True
    assert s["failures_by_type"] == {"HttpError": 2}
    assert s["previous"]["count"] == 1
    assert s["trend"]["count_change_pct"] == 600.0
    assert body["workflows"][0]["workflow"] == "Order intake"


def test_timeseries_slowest_steps_and_failures(api, alices_runs):
    series = api.get("/api/v1/metrics/timeseries", {"range": "hour", "bucket": "minute"}).json()["series"]
    assert len(series) in (60, 61) and sum(r["count"] for r in series) == 7
    assert any(r["queue_wait_p95_ms"] == 3.0 for r in series)
    steps = api.get("/api/v1/metrics/slowest-steps", {"range": "day"}).json()["steps"]
    assert [s["node_id"] for s in steps] == ["fetch", "note"]
    assert steps[0]["count"] == 4 and steps[0]["p95_ms"] == pytest.approx(0.8 * (300 + 0.85 * 100))
    failures = api.get("/api/v1/metrics/failures", {"range": "day"}).json()
    assert failures["by_type"] == [{"error_type": "HttpError", "count": 2}]
    assert failures["by_workflow"][0]["failures"] == 2
    assert [r["error_type"] for r in failures["recent"]] == ["HttpError", "HttpError"]


def test_csv_export_has_a_row_per_bucket_and_per_workflow(api, alices_runs, settings):
    settings.TIME_ZONE = "UTC"
    response = api.get("/api/v1/metrics/export.csv", {"range": "day", "bucket": "day", "tz": "UTC"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0])[:6] == ["bucket_start", "bucket_end", "partial", "workflow_id", "workflow", "count"]
    assert "throughput_per_hour" not in rows[0]  # counts per bucket, never a rate
    assert rows[-1]["partial"] == "true"  # today's bucket has not ended
    overall = [r for r in rows if r["workflow"] == "(all)"]
    per_wf = [r for r in rows if r["workflow"] == "Order intake"]
    assert sum(int(r["count"]) for r in overall) == 7
    assert sum(int(r["count"]) for r in per_wf) == 7
    assert sum(int(r["failures"]) for r in per_wf) == 2
    assert all(r["exact"] == "true" for r in rows)
    assert any("HttpError=2" in r["failures_by_type"] or "HttpError=1" in r["failures_by_type"] for r in per_wf)


def test_csv_neutralises_formulas_in_workflow_names(api, alice):
    wf = make_workflow(alice, "=HYPERLINK(\"http://evil\")")
    run_metric(wf, timezone.now() - timedelta(minutes=5), 10)
    text = api.get("/api/v1/metrics/export.csv", {"range": "day", "bucket": "day"}).content.decode()
    assert "'=HYPERLINK" in text


@pytest.mark.parametrize(
    "params, field",
    [({"tz": "Mars/Olympus"}, "tz"), ({"bucket": "fortnight"}, "bucket"), ({"range": "decade"}, "range"),
     ({"from": "yesterday"}, "from"), ({"from": "2026-01-02", "to": "2026-01-01"}, "to"), ({"range": "month", "bucket": "minute"}, "bucket"),
     ({"workflow": "abc"}, "workflow")],
)
def test_bad_filters_answer_400_naming_the_field(api, params, field):
    response = api.get("/api/v1/metrics/summary", params)
    assert response.status_code == 400
    assert field in response.json()


def test_charlie_sees_nothing_of_alices_metrics(api_as, charlie, alices_runs, charlies_wf):
    run_metric(charlies_wf, timezone.now() - timedelta(minutes=3), 42)
    client = api_as(charlie)
    summary = client.get("/api/v1/metrics/summary", {"range": "day"}).json()
    assert summary["summary"]["count"] == 1
    assert [w["workflow"] for w in summary["workflows"]] == ["Charlie's own"]
    assert client.get("/api/v1/metrics/summary", {"workflow": alices_runs.pk}).status_code == 404
    assert client.get("/api/v1/metrics/export.csv", {"workflow": alices_runs.pk}).status_code == 404
    assert client.get("/api/v1/metrics/slowest-steps", {"range": "day"}).json()["steps"] == []
    assert client.get("/api/v1/metrics/failures", {"range": "day"}).json()["total_failures"] == 0
    text = client.get("/api/v1/metrics/export.csv", {"range": "day", "bucket": "day"}).content.decode()
    assert "Order intake" not in text


def test_bob_sees_a_workflow_shared_with_his_team(api_as, alice, bob, team, alices_runs):
    from apps.sharing.services import share_workflow

    share_workflow(alices_runs, team, "view", acting_user=alice)
    body = api_as(bob).get("/api/v1/metrics/summary", {"range": "day", "workflow": alices_runs.pk}).json()
    assert body["summary"]["count"] == 7


def test_anonymous_callers_get_401_or_403(anon_api):
    assert anon_api.get("/api/v1/metrics/summary").status_code in (401, 403)
    assert anon_api.get("/api/v1/metrics/export.csv").status_code in (401, 403)


def test_throughput_is_over_the_elapsed_part_of_the_range_and_buckets_give_counts(api, wf, monkeypatch):
    # 17 runs in the first 2 minutes of an hour, seen at 2 minutes past: the hour's bucket counts 17
    # (flagged partial), and no rate is projected from those 2 minutes.
    hour = (timezone.now() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    now = hour + timedelta(minutes=2)
    for i in range(17):
        run_metric(wf, hour + timedelta(seconds=5 + i * 6), 100)
    monkeypatch.setattr(timezone, "now", lambda: now)

    series = api.get("/api/v1/metrics/timeseries", {"range": "day", "bucket": "hour"}).json()["series"]
    last = series[-1]
    assert (datetime.fromisoformat(last["bucket"]), last["count"], last["partial"]) == (hour, 17, True)
    assert datetime.fromisoformat(last["bucket_end"]) == hour + timedelta(hours=1)
    assert all("throughput_per_hour" not in row for row in series)

    day = api.get("/api/v1/metrics/summary", {"range": "day"}).json()["summary"]
    assert (day["count"], day["elapsed_hours"], day["throughput_per_hour"]) == (17, 24, round(17 / 24, 4))

    # A custom range from the top of the hour, its end in the future: 2 minutes have passed.
    body = api.get("/api/v1/metrics/summary", {"from": hour.isoformat(), "to": (hour + timedelta(hours=1)).isoformat()}).json()
    assert body["summary"]["count"] == 17
    assert body["summary"]["elapsed_hours"] == round(2 / 60, 4)
    assert body["summary"]["throughput_per_hour"] is None  # not 17 × 30 = 510/h
    assert body["workflows"][0]["throughput_per_hour"] is None


def test_the_schema_documents_the_summary_and_series_fields(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    assert "throughput_per_hour" in schema["MetricsSummary"]["properties"]
    assert "elapsed_hours" in schema["MetricsSummary"]["properties"]
    bucket = schema["MetricsBucket"]["properties"]
    assert {"bucket", "bucket_end", "partial", "count"} <= set(bucket) and "throughput_per_hour" not in bucket
