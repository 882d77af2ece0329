"""Aggregation boundaries by hour and by day in non-UTC zones (DST in New York, +05:30 in Kolkata)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from apps.metrics import aggregation
from apps.metrics.aggregation import Scope

from .conftest import run_metric

NY = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
UTC = ZoneInfo("UTC")


def _utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_hour_buckets_in_new_york_keep_both_one_oclocks_of_the_dst_change(wf, settings):
    settings.WB_METRICS_RAW_DAYS = 100_000  # these dates must count as raw (exact) data
    # 2026-11-01: New York falls back at 06:00 UTC (02:00 EDT -> 01:00 EST).
    run_metric(wf, _utc(2026, 11, 1, 4, 59, 59), 10)  # 00:59:59 EDT
    run_metric(wf, _utc(2026, 11, 1, 5, 0, 0), 20)  # 01:00 EDT
    run_metric(wf, _utc(2026, 11, 1, 5, 59, 59), 30)  # 01:59:59 EDT
    run_metric(wf, _utc(2026, 11, 1, 6, 0, 0), 40)  # 01:00 EST (second one o'clock)
    run_metric(wf, _utc(2026, 11, 1, 7, 0, 0), 50)  # 02:00 EST
    rows = aggregation.timeseries(Scope.workflow(wf.pk), _utc(2026, 11, 1, 4), _utc(2026, 11, 1, 8), "hour", NY)
    assert [(r["bucket"], r["count"]) for r in rows] == [
        ("2026-11-01T00:00:00-04:00", 1),
        ("2026-11-01T01:00:00-04:00", 2),
        ("2026-11-01T01:00:00-05:00", 1),
        ("2026-11-01T02:00:00-05:00", 1),
    ]
    assert all(r["exact"] for r in rows)


def test_day_buckets_in_new_york_around_the_dst_change(wf, settings):
    settings.WB_METRICS_RAW_DAYS = 100_000
    run_metric(wf, _utc(2026, 11, 1, 3, 59, 59), 10)  # Oct 31, 23:59:59 EDT
    run_metric(wf, _utc(2026, 11, 1, 4, 0, 0), 20)  # Nov 1, 00:00 EDT
    run_metric(wf, _utc(2026, 11, 2, 4, 59, 59), 30)  # Nov 1, 23:59:59 EST (the 25-hour day)
    run_metric(wf, _utc(2026, 11, 2, 5, 0, 0), 40)  # Nov 2, 00:00 EST
    rows = aggregation.timeseries(Scope.workflow(wf.pk), _utc(2026, 10, 31, 12), _utc(2026, 11, 2, 12), "day", NY)
    assert [(r["bucket"], r["count"]) for r in rows] == [
        ("2026-10-31T00:00:00-04:00", 1),
        ("2026-11-01T00:00:00-04:00", 2),
        ("2026-11-02T00:00:00-05:00", 1),
    ]
    # Nov 1 has 25 hours in New York: its bucket ends at the next local midnight, in EST.
    assert rows[1]["bucket_end"] == "2026-11-02T00:00:00-05:00"
    # The range starts and ends inside the first and last days: those two are partial.
    assert [r["partial"] for r in rows] == [True, False, True]
    assert "throughput_per_hour" not in rows[1]  # a bucket gives its count, never a rate


def test_day_and_hour_buckets_in_kolkata_start_at_half_past_utc(wf, settings):
    settings.WB_METRICS_RAW_DAYS = 100_000
    run_metric(wf, _utc(2026, 3, 10, 18, 29, 59), 10)  # 23:59:59 IST on the 10th
    run_metric(wf, _utc(2026, 3, 10, 18, 30, 0), 20)  # 00:00 IST on the 11th
    run_metric(wf, _utc(2026, 3, 10, 19, 29, 0), 30)  # 00:59 IST on the 11th
    days = aggregation.timeseries(Scope.workflow(wf.pk), _utc(2026, 3, 10, 0), _utc(2026, 3, 11, 12), "day", KOLKATA)
    assert [(r["bucket"], r["count"]) for r in days] == [
        ("2026-03-10T00:00:00+05:30", 1),
        ("2026-03-11T00:00:00+05:30", 2),
    ]
    hours = aggregation.timeseries(Scope.workflow(wf.pk), _utc(2026, 3, 10, 17, 30), _utc(2026, 3, 10, 19, 30), "hour", KOLKATA)
    assert [(r["bucket"], r["count"]) for r in hours] == [
        ("2026-03-10T23:00:00+05:30", 1),
        ("2026-03-11T00:00:00+05:30", 2),
    ]


def test_the_default_zone_is_the_servers(wf, settings, api):
    settings.TIME_ZONE = "Asia/Kolkata"
    now = timezone.now()
    run_metric(wf, now - timedelta(minutes=5), 10)
    body = api.get("/api/v1/metrics/timeseries", {"range": "week", "bucket": "day"}).json()
    assert body["filters"]["tz"] == "Asia/Kolkata"
    assert body["series"][-1]["bucket"].endswith("+05:30")
