"""Percentiles: exact from raw rows (percentile_cont), estimated from rollup histograms."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.metrics import aggregation
from apps.metrics.aggregation import Scope
from apps.metrics.histogram import estimate_percentile, mad, median
from apps.metrics.models import HISTOGRAM_BOUNDS_MS, HourlyRollup

from .conftest import run_metric

UTC = ZoneInfo("UTC")
# A known data set: 10 runs. Hand-computed percentile_cont (linear interpolation at rank p·(n−1)):
# sorted 10, 20, 30, 40, 50, 60, 70, 80, 90, 1000
#   P50: rank 4.5  -> 50 + 0.5·(60−50)     = 55
#   P90: rank 8.1  -> 90 + 0.1·(1000−90)   = 181
#   P95: rank 8.55 -> 90 + 0.55·(1000−90)  = 590.5
#   P99: rank 8.91 -> 90 + 0.91·(1000−90)  = 918.1
DURATIONS = [70, 10, 1000, 40, 20, 90, 30, 60, 50, 80]


def test_median_and_mad_by_hand():
    assert median([1, 2, 3, 4]) == 2.5
    assert median([5, 1, 3]) == 3
    # |x − 3| for 1..5 = 2, 1, 0, 1, 2 -> median 1
    assert mad([1, 2, 3, 4, 5]) == 1


def test_histogram_estimate_stays_inside_the_bucket_and_the_observed_range():
    counts = [0] * len(HISTOGRAM_BOUNDS_MS)
    counts[HISTOGRAM_BOUNDS_MS.index(50)] = 10  # ten values in [50, 100)
    p50 = estimate_percentile(counts, HISTOGRAM_BOUNDS_MS, 0.5, lo=55, hi=95)
    # rank 4.5 of 10 over [55, 95), value k at 55 + 40 · (k + 0.5) / 10: between k=4 (73) and k=5 (77) -> 75
    assert p50 == pytest.approx(75)
    assert 55 <= estimate_percentile(counts, HISTOGRAM_BOUNDS_MS, 0.99, lo=55, hi=95) <= 95
    assert estimate_percentile([0] * len(HISTOGRAM_BOUNDS_MS), HISTOGRAM_BOUNDS_MS, 0.5) is None


def test_raw_percentiles_are_exact(wf):
    end = timezone.now()
    for i, d in enumerate(DURATIONS):
        run_metric(wf, end - timedelta(minutes=30 + i), d)
    stats = aggregation.aggregate(Scope.workflow(wf.pk), end - timedelta(hours=2), end, "all", tz=UTC)[0]
    assert stats.exact is True
    assert stats.count == 10
    assert stats.percentiles["p50_ms"] == pytest.approx(55)
    assert stats.percentiles["p90_ms"] == pytest.approx(181)
    assert stats.percentiles["p95_ms"] == pytest.approx(590.5)
    assert stats.percentiles["p99_ms"] == pytest.approx(918.1)
    assert stats.as_dict(2)["avg_ms"] == pytest.approx(145)
    assert stats.as_dict(2)["throughput_per_hour"] == pytest.approx(5)
    assert stats.as_dict(0.5)["throughput_per_hour"] is None  # under an hour: no rate (it would be a projection)


def test_old_data_comes_from_rollups_and_says_it_is_estimated(wf, settings):
    settings.WB_METRICS_RAW_DAYS = 1
    hour = (timezone.now() - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    for i, d in enumerate(DURATIONS):
        run_metric(wf, hour + timedelta(minutes=i + 1), d, status="failed" if d == 1000 else "completed", error_type="HttpError" if d == 1000 else "")
    assert aggregation.roll_up(hour - timedelta(hours=1), hour + timedelta(hours=2)) == 1
    rollup = HourlyRollup.objects.get(workflow=wf)
    assert (rollup.count, rollup.successes, rollup.failures, rollup.min_ms, rollup.max_ms, rollup.sum_ms) == (10, 9, 1, 10, 1000, 1450)
    assert rollup.failures_by_type == {"HttpError": 1}
    assert sum(rollup.histogram) == 10 and rollup.histogram[HISTOGRAM_BOUNDS_MS.index(1000)] == 1

    pruned = aggregation.prune()
    assert pruned["executions"] == 10  # raw rows past WB_METRICS_RAW_DAYS are gone, the rollup stays
    stats = aggregation.aggregate(Scope.workflow(wf.pk), hour - timedelta(hours=1), hour + timedelta(hours=2), "all", tz=UTC)[0]
    assert stats.exact is False
    assert (stats.count, stats.failures, stats.failures_by_type) == (10, 1, {"HttpError": 1})
    # P50 (rank 4.5) falls in the [50, 100) bucket holding 50, 60, 70, 80, 90 — the estimate stays in it.
    assert 50 <= stats.percentiles["p50_ms"] < 100
    # P99 (rank 8.91) lies between the 9th value (estimated 95: last of five in [50, 100)) and
    # the 10th (1000: the [1000, 2000) bucket clamped to the max): 95 + 0.91 × 905 = 918.55 (exact: 918.1).
    assert stats.percentiles["p99_ms"] == pytest.approx(918.55)
    summary = aggregation.summary(Scope.workflow(wf.pk), hour - timedelta(hours=1), hour + timedelta(hours=2), UTC)
    assert summary["exact"] is False and summary["count"] == 10


def test_rolling_up_twice_changes_nothing(wf):
    hour = (timezone.now() - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    for d in DURATIONS:
        run_metric(wf, hour + timedelta(minutes=5), d)
    aggregation.roll_up(hour, hour + timedelta(hours=1))
    aggregation.roll_up(hour, hour + timedelta(hours=1))
    assert HourlyRollup.objects.get(workflow=wf).count == 10
