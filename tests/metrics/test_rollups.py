"""Closed hours from the hourly rollups (runs and steps), the open hour from raw rows: the figures
match the raw computation (counts exactly, percentiles within one histogram bucket), the periodic
task builds the step rollups idempotently, and the dashboard's statement count does not grow with
the number of runs."""

from __future__ import annotations

import bisect
import random
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.metrics import aggregation
from apps.metrics.aggregation import Scope
from apps.metrics.models import HISTOGRAM_BOUNDS_MS, HourlyRollup, StepHourlyRollup

from .conftest import make_workflow, run_metric

UTC = ZoneInfo("UTC")


@pytest.fixture
def logged_in(client: Client):
    def login(user) -> Client:
        client.force_login(user)
        return client

    return login


def bucket(value: float) -> int:
    return bisect.bisect_right(HISTOGRAM_BOUNDS_MS, value) - 1


def within_one_bucket(estimate: float | None, exact: float | None) -> bool:
    assert estimate is not None and exact is not None
    return abs(bucket(estimate) - bucket(exact)) <= 1


def fill(workflow, *, hours: int = 6, per_hour: int = 12, seed: int = 1) -> int:
    """Runs (each with two steps) over the last `hours` closed hours and the open one; returns how many."""
    rng = random.Random(seed)
    now = timezone.now()
    top = now.replace(minute=0, second=0, microsecond=0)
    n = 0
    for h in range(1, hours + 1):
        for i in range(per_hour):
            finished = top - timedelta(hours=h) + timedelta(minutes=rng.uniform(0.5, 59.5))
            failed = i % 5 == 0
            run_metric(workflow, finished, rng.lognormvariate(5, 1), status="failed" if failed else "completed",
                       error_type="HttpError" if failed else "",
                       steps=[{"node_id": "fetch", "activity": "http", "duration_ms": rng.lognormvariate(4, 1), "queue_wait_ms": rng.uniform(1, 80)},
                              {"node_id": "save", "activity": "noop", "duration_ms": rng.lognormvariate(1, 0.5), "attempt": 2 if failed else 1}])
            n += 1
    for _ in range(3):  # the open hour: never rolled up as complete
        run_metric(workflow, now - timedelta(seconds=rng.uniform(1, 20)), rng.lognormvariate(5, 1),
                   steps=[{"node_id": "fetch", "activity": "http", "duration_ms": 5000.0, "queue_wait_ms": 3.0}])
        n += 1
    return n


@pytest.mark.django_db
def test_figures_from_rollups_equal_the_raw_computation(wf):
    total = fill(wf)
    scope = Scope.workflow(wf.pk)
    end = timezone.now() + timedelta(seconds=1)
    start = end - timedelta(hours=8)
    exact = aggregation.aggregate(scope, start, end, "all", tz=UTC, complete_until=None)[0]
    exact_steps = {(s["node_id"]): s for s in aggregation.slowest_steps(scope, start, end, complete_until=None)}
    assert exact.exact and exact.count == total

    aggregation.roll_up_recent()
    done = aggregation.rollups_complete_until()
    assert done is not None and done <= timezone.now()
    assert StepHourlyRollup.objects.filter(workflow=wf).exists()

    rolled = aggregation.aggregate(scope, start, end, "all", tz=UTC)[0]
    assert rolled.exact is False  # closed hours came from the rollups
    # Counts, sums, min and max: exact; the open hour's runs (raw rows) are in.
    assert (rolled.count, rolled.successes, rolled.failures, rolled.cancelled) == (exact.count, exact.successes, exact.failures, exact.cancelled)
    assert rolled.failures_by_type == exact.failures_by_type
    assert rolled.sum_ms == pytest.approx(exact.sum_ms)
    assert (rolled.min_ms, rolled.max_ms) == (exact.min_ms, exact.max_ms)
    for key in aggregation.PERCENTILE_KEYS:
        assert within_one_bucket(rolled.percentiles[key], exact.percentiles[key]), key

    steps = {s["node_id"]: s for s in aggregation.slowest_steps(scope, start, end)}
    assert set(steps) == set(exact_steps) == {"fetch", "save"}
    for node, row in steps.items():
        want = exact_steps[node]
        assert row["exact"] is False
        assert (row["count"], row["retries"], row["failures"], row["max_ms"]) == (want["count"], want["retries"], want["failures"], want["max_ms"])
        assert row["avg_queue_wait_ms"] == pytest.approx(want["avg_queue_wait_ms"], abs=0.01) if want["avg_queue_wait_ms"] is not None else row["avg_queue_wait_ms"] is None
        assert within_one_bucket(row["p95_ms"], want["p95_ms"]) and within_one_bucket(row["p50_ms"], want["p50_ms"])

    # Per bucket (hours): the same counts as the raw computation, bucket by bucket.
    raw_series = {k: v.count for k, v in aggregation.aggregate(scope, start, end, "bucket", unit="hour", tz=UTC, complete_until=None).items()}
    rolled_series = {k: v.count for k, v in aggregation.aggregate(scope, start, end, "bucket", unit="hour", tz=UTC).items()}
    assert rolled_series == raw_series
    raw_waits = aggregation.queue_wait(scope, start, end, "hour", UTC, complete_until=None)
    waits = aggregation.queue_wait(scope, start, end, "hour", UTC)
    assert set(waits) == set(raw_waits)
    for k, w in waits.items():
        assert w["avg"] == pytest.approx(raw_waits[k]["avg"], abs=0.01)
        assert within_one_bucket(w["p95"], raw_waits[k]["p95"])


@pytest.mark.django_db
def test_the_open_hour_comes_from_raw_rows(wf):
    now = timezone.now()
    aggregation.roll_up_recent()  # nothing yet: marks the rollups complete up to the last closed hour
    run_metric(wf, now - timedelta(seconds=5), 100, steps=[{"node_id": "fetch", "duration_ms": 90, "queue_wait_ms": 2}])
    stats = aggregation.aggregate(Scope.workflow(wf.pk), now - timedelta(days=1), now + timedelta(seconds=1), "all", tz=UTC)[0]
    assert stats.count == 1 and stats.exact is True  # no closed hour had runs: nothing estimated
    assert [s["node_id"] for s in aggregation.slowest_steps(Scope.workflow(wf.pk), now - timedelta(days=1), now + timedelta(seconds=1))] == ["fetch"]


@pytest.mark.django_db
def test_rolling_up_steps_twice_changes_nothing(wf):
    fill(wf, hours=3, per_hour=5)
    aggregation.roll_up_recent()
    first = sorted(StepHourlyRollup.objects.values_list("hour", "node_id", "count", "retries", "failures", "histogram"))
    runs = sorted(HourlyRollup.objects.values_list("hour", "count", "queue_wait_count", "queue_wait_histogram"))
    aggregation.roll_up_recent()
    aggregation.roll_up(timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=4), timezone.now())
    assert sorted(StepHourlyRollup.objects.values_list("hour", "node_id", "count", "retries", "failures", "histogram")) == first
    assert sorted(HourlyRollup.objects.values_list("hour", "count", "queue_wait_count", "queue_wait_histogram")) == runs
    assert sum(c for _, _, c, *_ in first) == 3 * 5 * 2 + 3  # every step activation, the open hour's included


def test_mad_from_a_histogram_is_close_to_the_exact_one():
    values = [10, 20, 30, 40, 50, 60, 70, 80, 90, 1000]
    counts = [0] * len(HISTOGRAM_BOUNDS_MS)
    for v in values:
        counts[bucket(v)] += 1
    # exact: median 55, |x − 55| sorted 5, 5, 15, 15, 25, 25, 35, 35, 45, 945 -> MAD 25
    assert aggregation._mad_from_histogram(counts, 55.0, 10, 1000) == pytest.approx(25, abs=20)


@pytest.mark.django_db
def test_a_stranger_still_gets_404_for_someone_elses_workflow(logged_in, alice, charlie, wf):
    fill(wf, hours=2, per_hour=3)
    aggregation.roll_up_recent()
    client = logged_in(charlie)
    assert client.get("/metrics/", {"workflow": wf.pk}).status_code == 404
    assert client.get("/api/v1/metrics/summary", {"workflow": wf.pk}).status_code == 404
    assert client.get("/api/v1/metrics/slowest-steps", {"range": "week", "workflow": wf.pk}).status_code == 404
    response = client.get("/api/v1/metrics/summary", {"range": "week"})
    assert response.status_code == 200 and response.json()["summary"]["count"] == 0  # alice's runs are not in charlie's figures
    assert client.get("/api/v1/metrics/slowest-steps", {"range": "week"}).json()["steps"] == []


DASHBOARD_QUERIES = 36  # session, user, workflow choices, the rollup state (once), then a fixed number a figure (raw + rollup parts)


@pytest.mark.django_db
@pytest.mark.parametrize("range_", ["day", "week", "month"])
def test_the_dashboards_statement_count_is_pinned_and_does_not_grow_with_runs(logged_in, alice, wf, range_):
    other = make_workflow(alice, "Second")
    client = logged_in(alice)
    counts = []
    for seed, per_hour in ((1, 2), (2, 10)):
        fill(wf, hours=4, per_hour=per_hour, seed=seed)
        fill(other, hours=4, per_hour=per_hour, seed=seed + 10)
        aggregation.roll_up_recent()
        client.get("/metrics/", {"range": range_})  # warm (session, content types)
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/metrics/", {"range": range_})
        assert response.status_code == 200
        assert "≈" in response.content.decode()  # percentiles from histograms are marked as estimates
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1] == DASHBOARD_QUERIES, [q["sql"][:120] for q in queries.captured_queries]


@pytest.mark.django_db
def test_whole_days_come_from_the_daily_rollups_with_the_same_figures(wf):
    from apps.metrics.models import DailyRollup, StepDailyRollup

    rng = random.Random(7)
    now = timezone.now()
    total = 0
    for h in range(1, 24 * 4, 5):  # four days, a run every five hours
        run_metric(wf, now - timedelta(hours=h, minutes=rng.uniform(0, 50)), rng.lognormvariate(5, 1), status="failed" if h % 3 == 0 else "completed",
                   error_type="StepTimeout" if h % 3 == 0 else "", steps=[{"node_id": "fetch", "duration_ms": rng.lognormvariate(4, 1), "queue_wait_ms": 5.0}])
        total += 1
    aggregation.roll_up_recent()
    aggregation.roll_up_recent()  # twice: the daily sums do not double
    assert DailyRollup.objects.filter(workflow=wf).count() >= 3 and StepDailyRollup.objects.filter(workflow=wf).exists()
    scope, start, end = Scope.workflow(wf.pk), now - timedelta(days=7), now + timedelta(seconds=1)
    exact = aggregation.aggregate(scope, start, end, "all", tz=UTC, complete_until=None)[0]
    rolled = aggregation.aggregate(scope, start, end, "all", tz=UTC)[0]
    assert exact.count == rolled.count == total
    assert (rolled.failures, rolled.failures_by_type, rolled.max_ms) == (exact.failures, exact.failures_by_type, exact.max_ms)
    assert rolled.sum_ms == pytest.approx(exact.sum_ms)
    assert within_one_bucket(rolled.percentiles["p95_ms"], exact.percentiles["p95_ms"])
    by_wf = aggregation.aggregate(scope, start, end, "workflow", tz=UTC)[wf.pk]
    assert by_wf.count == total
    [step] = aggregation.slowest_steps(scope, start, end)
    [want] = aggregation.slowest_steps(scope, start, end, complete_until=None)
    assert (step["count"], step["max_ms"], step["avg_queue_wait_ms"]) == (want["count"], want["max_ms"], want["avg_queue_wait_ms"]) == (total, want["max_ms"], 5.0)
    assert within_one_bucket(step["p95_ms"], want["p95_ms"])
    # Day buckets in UTC are read from the daily rows too: the same counts, day by day.
    raw_days = {k: v.count for k, v in aggregation.aggregate(scope, start, end, "bucket", unit="day", tz=UTC, complete_until=None).items()}
    rolled_days = {k: v.count for k, v in aggregation.aggregate(scope, start, end, "bucket", unit="day", tz=UTC).items()}
    assert rolled_days == raw_days and sum(rolled_days.values()) == total
    ny = ZoneInfo("America/New_York")  # local days are not UTC days: hourly rows there, same counts
    assert ({k: v.count for k, v in aggregation.aggregate(scope, start, end, "bucket", unit="day", tz=ny).items()}
            == {k: v.count for k, v in aggregation.aggregate(scope, start, end, "bucket", unit="day", tz=ny, complete_until=None).items()})
    raw_waits = aggregation.queue_wait(scope, start, end, "day", UTC, complete_until=None)
    waits = aggregation.queue_wait(scope, start, end, "day", UTC)
    assert {k: w["avg"] for k, w in waits.items()} == {k: pytest.approx(w["avg"]) for k, w in raw_waits.items()}


@pytest.mark.django_db
def test_the_periodic_task_builds_step_rollups_and_prunes_them_past_the_keep(wf, settings):
    from apps.metrics.models import StepDailyRollup
    from apps.metrics.tasks import rollup_and_prune

    fill(wf, hours=2, per_hour=3)
    counts = rollup_and_prune()
    assert counts["rolled_up"] > 0 and StepHourlyRollup.objects.filter(workflow=wf).exists() and StepDailyRollup.objects.filter(workflow=wf).exists()
    settings.WB_METRICS_ROLLUP_DAYS = 0
    settings.WB_METRICS_RAW_DAYS = 0
    pruned = aggregation.prune(now=timezone.now() + timedelta(days=3))
    assert pruned["step_rollups"] > 0 and pruned["step_daily_rollups"] > 0 and pruned["daily_rollups"] > 0
    assert not StepHourlyRollup.objects.exists() and not StepDailyRollup.objects.exists()
