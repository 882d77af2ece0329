"""Aggregation: counts, success rates, throughput and duration percentiles by time bucket,
per workflow and overall; slowest steps, failures, trends and anomalies.

Where the figures come from:
- the hourly rollups (HourlyRollup for runs, StepHourlyRollup for steps) for every whole UTC
  hour of the range that is closed and rolled up (RollupState.complete_until, which the
  periodic task rollup_and_prune moves on);
- raw rows (ExecutionMetric, StepMetric) for the rest: the open hour (and any hour the task
  has not rolled up yet) and the part of the range's first hour after its start.
With rollups in the answer, counts, sums, min and max are still exact, but percentiles are
estimated from the merged fixed-bucket histograms (apps.metrics.histogram): within one
histogram bucket of the exact figure. Every answer says which with "exact". Rollups are UTC
hours: in zones whose offset is not a whole hour (Asia/Kolkata), rolled-up data lands in the
local bucket its UTC hour starts in.

Runs that ended `continued` (continue-as-new segments) are not counted: the chain's
last segment carries its outcome. Success rate = completed ÷ (completed + failed +
cancelled). Throughput (of a range, never of a bucket) = runs ÷ the hours of the range that
have passed (its end capped at now), reported only once at least an hour has passed: a rate
over a few minutes, or over a bucket still in progress, would be a projection. Buckets give
their count instead, and say when they are `partial` (cut by the range's start, its end or now).

Every function takes a Scope (the workflows the asking user may view) and never
returns rows outside it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import Min
from django.utils import timezone

from apps.sharing.services import visible_workflows
from apps.workflows.models import Workflow

from .histogram import estimate_percentile, mad, median
from .models import (
    HISTOGRAM_BOUNDS_MS,
    DailyRollup,
    ExecutionMetric,
    HourlyRollup,
    StepDailyRollup,
    StepHourlyRollup,
    StepMetric,
)

UTC = ZoneInfo("UTC")
PERCENTILES = (0.5, 0.9, 0.95, 0.99)
PERCENTILE_KEYS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms")
UNITS = ("minute", "hour", "day", "week", "month")
MAX_BUCKETS = 5000

SLOW_RUN_RULE = (
    "a run is anomalous when its duration > 2 × P95 and > median + 3 × MAD of the same workflow's runs "
    "in the 7 days before the range (at least {min_runs} runs there; P95, median and MAD estimated from "
    "the hourly duration histograms)"
)
FAILURE_HOUR_RULE = (
    "an hour is anomalous when its failed runs >= {min_failures} and > median + 3 × MAD of the hourly "
    "failure counts of the 7 days before the range (hours without failures count as 0)"
)
BASELINE_DAYS = 7
MIN_BASELINE_RUNS = 20
MIN_FAILURES_PER_HOUR = 3
MIN_RATE_HOURS = 1.0  # below this much elapsed time a per-hour rate would be a projection


#
# Scope and query
#


@dataclass(frozen=True)
class Scope:
    """Which workflows: a SQL condition on a workflow id column (`condition` follows the
    column: "= %s", "IN (subquery)") with its params."""

    condition: str
    params: tuple = ()

    @classmethod
    def for_user(cls, user, workflow_id: int | None = None) -> Scope:
        """The workflows `user` may view (or just `workflow_id`, which the caller has checked)."""
        if workflow_id is not None:
            return cls("= %s", (int(workflow_id),))
        if not getattr(user, "is_authenticated", False):
            return cls("IS NULL")  # workflow ids are never null: nothing
        if user.is_superuser:
            return cls("IS NOT NULL")
        sql, params = visible_workflows(user).values("pk").query.get_compiler(using="default").as_sql()
        return cls(f"IN ({sql})", tuple(params))

    @classmethod
    def workflow(cls, workflow_id: int) -> Scope:
        return cls("= %s", (int(workflow_id),))

    @property
    def sql(self) -> str:
        return f"workflow_id {self.condition}"


@dataclass
class Stats:
    """What is known of a set of runs."""

    count: int = 0
    successes: int = 0
    failures: int = 0
    cancelled: int = 0
    sum_ms: float = 0.0
    min_ms: float | None = None
    max_ms: float | None = None
    percentiles: dict[str, float | None] = field(default_factory=dict)
    failures_by_type: dict[str, int] = field(default_factory=dict)
    histogram: list[int] | None = None
    exact: bool = True

    def as_dict(self, hours: float | None = None) -> dict[str, Any]:
        """The figures; with `hours` (the hours of the range that have passed, see elapsed_hours)
        also `elapsed_hours` and `throughput_per_hour` (None under one hour)."""
        data: dict[str, Any] = {
            "count": self.count,
            "successes": self.successes,
            "failures": self.failures,
            "cancelled": self.cancelled,
            "success_rate": round(self.successes / self.count, 4) if self.count else None,
            **{key: _round(self.percentiles.get(key)) for key in PERCENTILE_KEYS},
            "avg_ms": _round(self.sum_ms / self.count) if self.count else None,
            "min_ms": _round(self.min_ms),
            "max_ms": _round(self.max_ms),
            "failures_by_type": dict(sorted(self.failures_by_type.items(), key=lambda kv: (-kv[1], kv[0]))),
            "exact": self.exact,
        }
        if hours is not None:
            data["elapsed_hours"] = round(hours, 4)
            data["throughput_per_hour"] = round(self.count / hours, 4) if hours >= MIN_RATE_HOURS else None
        return data


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


#
# Time buckets (in the viewer's zone)
#


def bucket_floor(moment: datetime, unit: str, tz: ZoneInfo) -> datetime:
    """Start of the `unit` bucket holding `moment`, in `tz` (same rule as Postgres'
    date_trunc(unit, ts, tz); weeks start on Monday)."""
    local = moment.astimezone(tz)
    if unit == "minute":
        return local.replace(second=0, microsecond=0)
    if unit == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.date()
    if unit == "week":
        day = day - timedelta(days=day.weekday())
    elif unit == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def bucket_next(start: datetime, unit: str, tz: ZoneInfo) -> datetime:
    if unit == "minute":
        return (start.astimezone(ZoneInfo("UTC")) + timedelta(minutes=1)).astimezone(tz)
    if unit == "hour":
        return (start.astimezone(ZoneInfo("UTC")) + timedelta(hours=1)).astimezone(tz)
    day = start.astimezone(tz).date()
    if unit == "day":
        day += timedelta(days=1)
    elif unit == "week":
        day += timedelta(days=7)
    else:
        day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def bucket_starts(start: datetime, end: datetime, unit: str, tz: ZoneInfo) -> list[datetime]:
    out = []
    current = bucket_floor(start, unit, tz)
    end = end.astimezone(UTC)
    while current.astimezone(UTC) < end:
        out.append(current)
        if len(out) > MAX_BUCKETS:
            raise ValueError(f"more than {MAX_BUCKETS} {unit} buckets: choose a larger bucket")
        current = bucket_next(current, unit, tz)
    return out


def raw_cutoff() -> datetime:
    """Raw rows older than this are (or may be) pruned: the hour WB_METRICS_RAW_DAYS ago, rounded up."""
    moment = timezone.now() - timedelta(days=settings.WB_METRICS_RAW_DAYS)
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


SETTLE = timedelta(minutes=2)  # an hour is rolled up as complete once it has been closed this long
NB = len(HISTOGRAM_BOUNDS_MS)
_HIST_SUMS = ", ".join(f"coalesce(sum(histogram[{i}]), 0)" for i in range(1, NB + 1))
_WAIT_HIST_SUMS = ", ".join(f"coalesce(sum(queue_wait_histogram[{i}]), 0)" for i in range(1, NB + 1))


def _hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_ceil(moment: datetime) -> datetime:
    floor = _hour_floor(moment)
    return floor if floor == moment else floor + timedelta(hours=1)


def rollups_complete_until() -> datetime | None:
    """The rollups hold every UTC hour before this (None: never built: everything from raw rows)."""
    rows = _fetch("SELECT complete_until FROM metrics_rollupstate WHERE id = 1", {})
    return rows[0][0] if rows else None


@dataclass(frozen=True)
class Plan:
    """Which part of [start, end) comes from which source: `rollup` (whole UTC hours) or None,
    and the raw spans (the start of the first hour, the hours after the rollups)."""

    raw: tuple[tuple[datetime, datetime], ...]
    rollup: tuple[datetime, datetime] | None
    daily: bool = False  # the daily rollups are built (from the hourly ones) for the complete hours


def plan(start: datetime, end: datetime, complete_until: datetime | None) -> Plan:
    """Rollups for the whole hours of [start, end) before `complete_until` (without one: before the
    raw cutoff, where raw rows may be pruned), raw rows for the rest."""
    if start >= end:
        return Plan(((start, end),), None)
    daily = complete_until is not None
    if complete_until is None:
        complete_until = raw_cutoff()
    # Hours whose raw rows may be pruned come wholly from the rollups (the range's first hour included).
    lo = _hour_floor(start) if start < raw_cutoff() else _hour_ceil(start)
    hi = min(_hour_floor(end), complete_until)
    if hi <= lo:
        return Plan(((start, end),), None)
    raw = []
    if start < lo:
        raw.append((start, lo))
    if hi < end:
        raw.append((hi, end))
    return Plan(tuple(raw), (lo, hi), daily)


def _day_split(
    span: tuple[datetime, datetime], daily: bool
) -> tuple[tuple[tuple[datetime, datetime], ...], tuple[datetime, datetime] | None]:
    """A span of whole hours as (hour spans, day span): the whole UTC days inside it come from
    the daily rollups, the hours at its ends from the hourly ones."""
    lo, hi = span
    day_lo = lo.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if day_lo < lo:
        day_lo += timedelta(days=1)
    day_hi = hi.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if not daily or day_hi <= day_lo:
        return (span,), None
    hours = tuple(s for s in ((lo, day_lo), (day_hi, hi)) if s[0] < s[1])
    return hours, (day_lo, day_hi)


_RUN_ROLLUP_COLUMNS = (
    "workflow_id, count, successes, failures, cancelled, sum_ms, min_ms, max_ms, histogram, failures_by_type"
)


_UTC_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu"})


def _run_rollup_source(
    span: tuple[datetime, datetime],
    daily: bool,
    group: str,
    params: dict,
    unit: str | None = None,
    tz: ZoneInfo | None = None,
) -> str:
    """The rollup rows of `span` as a FROM item `r` (with `hour`): hourly rows, and daily rows for
    the whole days inside it, for totals, and for day/week/month buckets in UTC (in other zones a
    local day is not a UTC day)."""
    if group == "bucket" and not (unit in ("day", "week", "month") and tz is not None and tz.key in _UTC_ZONES):
        daily = False
    hours, days = _day_split(span, daily)
    parts = [
        f"SELECT {_RUN_ROLLUP_COLUMNS}, hour FROM metrics_hourlyrollup WHERE {_spans_sql(hours, params, 'hour')} "
        "AND count > 0"
    ]
    if days is not None:
        params["day_a"], params["day_b"] = days
        parts.append(
            f"SELECT {_RUN_ROLLUP_COLUMNS}, day AS hour FROM metrics_dailyrollup WHERE day >= %(day_a)s AND day < "
            "%(day_b)s AND count > 0"
        )
    return "(" + " UNION ALL ".join(parts) + ") r"


def _spans_sql(spans: tuple[tuple[datetime, datetime], ...], params: dict, column: str = "finished_at") -> str:
    """The spans as one condition on `column` (their bounds added to params)."""
    parts = []
    for i, (a, b) in enumerate(spans):
        params[f"span_{i}_a"], params[f"span_{i}_b"] = a, b
        parts.append(f"({column} >= %(span_{i}_a)s AND {column} < %(span_{i}_b)s)")
    return "(" + (" OR ".join(parts) or "false") + ")"


#
# The two sources
#

_GROUPS_RAW = {"bucket": "date_trunc(%(unit)s, finished_at, %(tz)s)", "all": "0", "workflow": "workflow_id"}
_GROUPS_ROLLUP = {"bucket": "date_trunc(%(unit)s, hour, %(tz)s)", "all": "0", "workflow": "workflow_id"}


def _fetch(sql: str, params: dict) -> list[tuple]:
    """Rows, with datetimes in UTC: aware datetimes of a zone compare by wall clock among
    themselves and never equal across zones in a DST fold, so keys are kept in UTC."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(v.astimezone(UTC) if isinstance(v, datetime) else v for v in row) for row in cursor.fetchall()]


def _scoped_params(scope: Scope, params: dict, column: str = "workflow_id") -> tuple[str, dict]:
    """The scope as SQL on `column`, its %s placeholders turned into named ones for dict params."""
    condition = scope.condition
    named = dict(params)
    for i, value in enumerate(scope.params):
        condition = condition.replace("%s", f"%(scope_{i})s", 1)
        named[f"scope_{i}"] = value
    return f"{column} {condition}", named


def _raw(
    scope: Scope,
    spans: tuple[tuple[datetime, datetime], ...],
    group: str,
    unit: str | None,
    tz: ZoneInfo,
    *,
    histograms: bool,
) -> dict[Any, Stats]:
    if not spans:
        return {}
    key = _GROUPS_RAW[group]
    where, params = _scoped_params(scope, {"unit": unit or "hour", "tz": str(tz), "bounds": list(HISTOGRAM_BOUNDS_MS)})
    base = f"FROM metrics_executionmetric WHERE {_spans_sql(spans, params)} AND status <> 'continued' AND {where}"
    out: dict[Any, Stats] = {}
    for row in _fetch(
        f"""SELECT {key} AS k, count(*), count(*) FILTER (WHERE status = 'completed'),
                   count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'cancelled'),
                   sum(duration_ms), min(duration_ms), max(duration_ms),
                   percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms)
            {base} GROUP BY 1""",
        params,
    ):
        k, count, ok, failed, cancelled, total, lo, hi, pcts = row
        out[k] = Stats(
            count, ok, failed, cancelled, float(total or 0), lo, hi, dict(zip(PERCENTILE_KEYS, pcts, strict=True))
        )
    if not out:
        return out
    for k, error_type, n in _fetch(
        f"SELECT {key}, error_type, count(*) {base} AND status = 'failed' GROUP BY 1, 2", params
    ):
        out[k].failures_by_type[error_type or "unknown"] = n
    if histograms:
        for stats in out.values():
            stats.histogram = [0] * NB
        for k, idx, n in _fetch(
            f"SELECT {key}, width_bucket(duration_ms, %(bounds)s::float8[]), count(*) {base} GROUP BY 1, 2", params
        ):
            histogram = out[k].histogram
            assert histogram is not None  # set for every key just above
            histogram[max(0, min(idx, NB) - 1)] += n
    return out


def _rollups(
    scope: Scope,
    span: tuple[datetime, datetime] | None,
    group: str,
    unit: str | None,
    tz: ZoneInfo,
    *,
    daily: bool = False,
) -> dict[Any, Stats]:
    """Stats of the rolled-up hours in `span`: one statement for the sums and the histograms, one
    for the failures by type (of the hours that had failures)."""
    if span is None:
        return {}
    key = _GROUPS_ROLLUP[group]
    where, params = _scoped_params(scope, {"unit": unit or "hour", "tz": str(tz)})
    source = _run_rollup_source(span, daily, group, params, unit, tz)
    out: dict[Any, Stats] = {}
    for k, count, ok, failed, cancelled, total, lo, hi, *histogram in _fetch(
        f"SELECT {key}, sum(count), sum(successes), sum(failures), sum(cancelled), sum(sum_ms), min(min_ms), "
        f"max(max_ms), {_HIST_SUMS} FROM {source} WHERE {where} GROUP BY 1",
        params,
    ):
        out[k] = Stats(
            int(count),
            int(ok),
            int(failed),
            int(cancelled),
            float(total or 0),
            lo,
            hi,
            histogram=[int(n) for n in histogram],
            exact=False,
        )
    if any(s.failures for s in out.values()):
        for k, error_type, n in _fetch(
            f"SELECT {key}, f.key, sum(f.value::int) FROM {source}, jsonb_each_text(r.failures_by_type) AS f "
            f"WHERE r.failures > 0 AND {where} GROUP BY 1, 2",
            params,
        ):
            out[k].failures_by_type[error_type] = int(n)
    return out


def _merge(a: Stats, b: Stats) -> Stats:
    """Add two sets of runs; percentiles are then estimated from the summed histograms."""
    merged = Stats(
        a.count + b.count,
        a.successes + b.successes,
        a.failures + b.failures,
        a.cancelled + b.cancelled,
        a.sum_ms + b.sum_ms,
        min(x for x in (a.min_ms, b.min_ms) if x is not None)
        if (a.min_ms is not None or b.min_ms is not None)
        else None,
        max(x for x in (a.max_ms, b.max_ms) if x is not None)
        if (a.max_ms is not None or b.max_ms is not None)
        else None,
        exact=False,
    )
    merged.histogram = [
        x + y
        for x, y in zip(
            a.histogram or [0] * len(HISTOGRAM_BOUNDS_MS), b.histogram or [0] * len(HISTOGRAM_BOUNDS_MS), strict=True
        )
    ]
    for source in (a, b):
        for t, n in source.failures_by_type.items():
            merged.failures_by_type[t] = merged.failures_by_type.get(t, 0) + n
    return merged


def _estimate(stats: Stats) -> Stats:
    if not stats.exact and stats.histogram is not None:
        stats.percentiles = {
            key: estimate_percentile(stats.histogram, HISTOGRAM_BOUNDS_MS, p, lo=stats.min_ms, hi=stats.max_ms)
            for key, p in zip(PERCENTILE_KEYS, PERCENTILES, strict=True)
        }
    return stats


def _combine(old: dict[Any, Stats], new: dict[Any, Stats]) -> dict[Any, Stats]:
    """Rolled-up and raw stats by key (UTC datetimes, workflow ids or 0), merged where both have one."""
    out: dict[Any, Stats] = {}
    for k in set(old) | set(new):
        if k in old and k in new:
            out[k] = _estimate(_merge(old[k], new[k]))
        elif k in old:
            out[k] = _estimate(old[k])
        else:
            out[k] = new[k]
    return out


def aggregate(
    scope: Scope,
    start: datetime,
    end: datetime,
    group: str,
    *,
    unit: str | None = None,
    tz: ZoneInfo | None = None,
    complete_until: datetime | None | bool = False,
    histograms: bool = False,
) -> dict[Any, Stats]:
    """Stats of the runs finished in [start, end), grouped by `group` ("bucket", "all", "workflow"):
    closed hours from the rollups, the rest from raw rows (see the module's docstring)."""
    tz = tz or ZoneInfo(settings.TIME_ZONE)
    done = rollups_complete_until() if complete_until is False else complete_until
    assert not isinstance(done, bool)
    p = plan(start, end, done)
    old = _rollups(scope, p.rollup, group, unit, tz, daily=p.daily)
    new = _raw(scope, p.raw, group, unit, tz, histograms=histograms or bool(old))
    return _combine(old, new)


#
# Public queries (what the API, the dashboard and the CSV export show)
#


def elapsed_hours(start: datetime, end: datetime, now: datetime | None = None) -> float:
    """Hours of [start, end) that have passed: the end capped at now; 0 for a range still to come."""
    end = min(end, now or timezone.now())
    # Subtract in UTC: two datetimes of one zone subtract as wall clocks (a 25-hour day would give 24).
    return max((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600, 0.0)


def summary(
    scope: Scope, start: datetime, end: datetime, tz: ZoneInfo, *, complete_until: datetime | None | bool = False
) -> dict[str, Any]:
    """Totals of [start, end) and of the period of the same length before it, with the trend.
    Throughput is over the elapsed part of the range (see elapsed_hours)."""
    done = rollups_complete_until() if complete_until is False else complete_until
    current = aggregate(scope, start, end, "all", tz=tz, complete_until=done).get(0, Stats())
    prev_start = start - (end - start)
    previous = aggregate(scope, prev_start, start, "all", tz=tz, complete_until=done).get(0, Stats())
    now, before = current.as_dict(elapsed_hours(start, end)), previous.as_dict(elapsed_hours(prev_start, start))
    return {
        **now,
        "previous": {"from": prev_start.isoformat(), "to": start.isoformat(), **before},
        "trend": trend(now, before),
    }


def trend(now: dict, before: dict) -> dict[str, Any]:
    """Change from the previous period: percent for counts and durations, points for the rate."""

    def pct(a, b):
        if a is None or b is None or b == 0:
            return None
        return round((a - b) / b * 100, 1)

    rate = None
    if now["success_rate"] is not None and before["success_rate"] is not None:
        rate = round((now["success_rate"] - before["success_rate"]) * 100, 2)
    return {
        "count_change_pct": pct(now["count"], before["count"]),
        "success_rate_change_points": rate,
        "p50_change_pct": pct(now["p50_ms"], before["p50_ms"]),
        "p95_change_pct": pct(now["p95_ms"], before["p95_ms"]),
        "failures_change_pct": pct(now["failures"], before["failures"]),
    }


def timeseries(
    scope: Scope,
    start: datetime,
    end: datetime,
    unit: str,
    tz: ZoneInfo,
    *,
    complete_until: datetime | None | bool = False,
) -> list[dict[str, Any]]:
    """One row per bucket of [start, end) in `tz`, empty buckets included (count 0). A row has
    the bucket's start and end and its runs' figures (a count, never a rate); `partial` says the
    bucket is not wholly inside the range that has passed (cut by start, by end, or by now)."""
    starts = bucket_starts(start, end, unit, tz)
    done = rollups_complete_until() if complete_until is False else complete_until
    by_bucket = aggregate(scope, start, end, "bucket", unit=unit, tz=tz, complete_until=done)
    waits = queue_wait(scope, start, end, unit, tz, complete_until=done)
    seen_until = min(end, timezone.now()).astimezone(UTC)
    rows = []
    for i, bucket_start in enumerate(starts):
        bucket_end = starts[i + 1] if i + 1 < len(starts) else bucket_next(bucket_start, unit, tz)
        key = bucket_start.astimezone(UTC)
        stats = by_bucket.get(key, Stats())
        wait = waits.get(key, {})
        rows.append(
            {
                "bucket": bucket_start.isoformat(),
                "bucket_end": bucket_end.isoformat(),
                "partial": key < start.astimezone(UTC) or bucket_end.astimezone(UTC) > seen_until,
                **stats.as_dict(),
                "queue_wait_p50_ms": wait.get("p50"),
                "queue_wait_p95_ms": wait.get("p95"),
                "queue_wait_avg_ms": wait.get("avg"),
            }
        )
    return rows


def latest_finished(scope: Scope) -> datetime | None:
    """When the newest run in scope finished (raw rows, else rollup hours); None if none ever did."""
    where, params = _scoped_params(scope, {})
    rows = _fetch(
        f"""SELECT coalesce(
                   (SELECT max(finished_at) FROM metrics_executionmetric WHERE status <> 'continued' AND {where}),
                   (SELECT max(hour) FROM metrics_hourlyrollup WHERE count > 0 AND {where}))""",
        params,
    )
    return rows[0][0] if rows else None


def queue_wait(
    scope: Scope,
    start: datetime,
    end: datetime,
    unit: str,
    tz: ZoneInfo,
    *,
    complete_until: datetime | None | bool = False,
) -> dict[datetime, dict[str, Any]]:
    """Queue wait (dispatch to start) of the steps finished in each bucket: rolled-up hours from
    the rollups' queue-wait histograms (percentiles estimated), the rest from raw rows."""
    done = rollups_complete_until() if complete_until is False else complete_until
    assert not isinstance(done, bool)
    p = plan(start, end, done)
    old: dict[Any, Stats] = {}
    if p.rollup is not None:
        where, params = _scoped_params(scope, {"unit": unit, "tz": str(tz)})
        hours, days = _day_split(p.rollup, p.daily and unit in ("day", "week", "month") and tz.key in _UTC_ZONES)
        columns = (
            "workflow_id, queue_wait_count, queue_wait_sum_ms, queue_wait_min_ms, queue_wait_max_ms, "
            "queue_wait_histogram"
        )
        parts = [
            f"SELECT {columns}, hour FROM metrics_hourlyrollup WHERE {_spans_sql(hours, params, 'hour')} AND "
            "queue_wait_count > 0"
        ]
        if days is not None:
            params["day_a"], params["day_b"] = days
            parts.append(
                f"SELECT {columns}, day AS hour FROM metrics_dailyrollup WHERE day >= %(day_a)s AND day < %(day_b)s "
                "AND queue_wait_count > 0"
            )
        for k, n, total, lo, hi, *histogram in _fetch(
            f"""SELECT date_trunc(%(unit)s, hour, %(tz)s), sum(queue_wait_count), sum(queue_wait_sum_ms),
                    min(queue_wait_min_ms),
                       max(queue_wait_max_ms), {_WAIT_HIST_SUMS}
                FROM ({" UNION ALL ".join(parts)}) r WHERE {where}
                GROUP BY 1""",
            params,
        ):
            old[k] = Stats(
                count=int(n),
                sum_ms=float(total or 0),
                min_ms=lo,
                max_ms=hi,
                histogram=[int(c) for c in histogram],
                exact=False,
            )
    new: dict[Any, Stats] = {}
    if p.raw:
        where, params = _scoped_params(scope, {"unit": unit, "tz": str(tz), "bounds": list(HISTOGRAM_BOUNDS_MS)})
        base = f"FROM metrics_stepmetric WHERE {_spans_sql(p.raw, params)} AND queue_wait_ms IS NOT NULL AND {where}"
        for k, n, total, lo, hi, pcts in _fetch(
            f"""SELECT date_trunc(%(unit)s, finished_at, %(tz)s), count(*), sum(queue_wait_ms), min(queue_wait_ms),
                    max(queue_wait_ms),
                       percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]) WITHIN GROUP (ORDER BY queue_wait_ms)
                {base} GROUP BY 1""",
            params,
        ):
            new[k] = Stats(
                count=n,
                sum_ms=float(total or 0),
                min_ms=lo,
                max_ms=hi,
                percentiles=dict(zip(PERCENTILE_KEYS, pcts, strict=True)),
            )
        if old and new:
            for stats in new.values():
                stats.histogram = [0] * NB
            for k, idx, n in _fetch(
                "SELECT date_trunc(%(unit)s, finished_at, %(tz)s), width_bucket(queue_wait_ms, "
                "%(bounds)s::float8[]), count(*) "
                f"{base} GROUP BY 1, 2",
                params,
            ):
                hist = new[k].histogram
                assert hist is not None
                hist[max(0, min(idx, NB) - 1)] += n
    return {
        k: {
            "avg": _round(st.sum_ms / st.count) if st.count else None,
            "p50": _round(st.percentiles.get("p50_ms")),
            "p95": _round(st.percentiles.get("p95_ms")),
            "exact": st.exact,
        }
        for k, st in _combine(old, new).items()
    }


def by_workflow(
    scope: Scope, start: datetime, end: datetime, tz: ZoneInfo, *, complete_until: datetime | None | bool = False
) -> list[dict[str, Any]]:
    """Per-workflow stats of [start, end), with the workflow's name; busiest first."""
    stats = aggregate(scope, start, end, "workflow", tz=tz, complete_until=complete_until)
    names = dict(Workflow.objects.filter(pk__in=list(stats)).values_list("pk", "name"))
    hours = elapsed_hours(start, end)
    rows = [{"workflow_id": wid, "workflow": names.get(wid, f"#{wid}"), **s.as_dict(hours)} for wid, s in stats.items()]
    rows.sort(key=lambda r: (-r["count"], r["workflow"]))
    return rows


def slowest_steps(
    scope: Scope, start: datetime, end: datetime, *, limit: int = 20, complete_until: datetime | None | bool = False
) -> list[dict[str, Any]]:
    """Steps (workflow, node, activity) ordered by P95 duration: rolled-up hours from the step
    rollups (P50/P95 estimated from their merged histograms; counts, max and retries exact), the
    rest from raw rows. Never scans the steps of the rolled-up hours."""
    done = rollups_complete_until() if complete_until is False else complete_until
    assert not isinstance(done, bool)
    p = plan(start, end, done)
    Key = tuple[int, str, str, str]
    old: dict[Key, Stats] = {}
    extra: dict[Key, list[float]] = defaultdict(
        lambda: [0.0, 0, 0, 0]
    )  # queue wait sum, queue wait count, retries, failures
    if p.rollup is not None:
        where, params = _scoped_params(scope, {})
        hours, days = _day_split(p.rollup, p.daily)
        columns = (
            "workflow_id, node_id, node_type, activity, count, sum_ms, min_ms, max_ms, queue_wait_sum_ms, "
            "queue_wait_count, retries, failures, histogram"
        )
        parts = [f"SELECT {columns} FROM metrics_stephourlyrollup WHERE {_spans_sql(hours, params, 'hour')}"]
        if days is not None:
            params["day_a"], params["day_b"] = days
            parts.append(f"SELECT {columns} FROM metrics_stepdailyrollup WHERE day >= %(day_a)s AND day < %(day_b)s")
        for wid, node, ntype, activity, n, total, lo, hi, wait_sum, wait_n, retries, failed, *histogram in _fetch(
            f"""SELECT workflow_id, node_id, node_type, activity, sum(count), sum(sum_ms), min(min_ms), max(max_ms),
                       sum(queue_wait_sum_ms), sum(queue_wait_count), sum(retries), sum(failures), {_HIST_SUMS}
                FROM ({" UNION ALL ".join(parts)}) r WHERE {where}
                GROUP BY 1, 2, 3, 4""",
            params,
        ):
            key = (wid, node, ntype, activity)
            old[key] = Stats(
                count=int(n),
                sum_ms=float(total or 0),
                min_ms=lo,
                max_ms=hi,
                histogram=[int(c) for c in histogram],
                exact=False,
            )
            e = extra[key]
            e[0] += float(wait_sum or 0)
            e[1] += int(wait_n or 0)
            e[2] += int(retries)
            e[3] += int(failed)
    new: dict[Key, Stats] = {}
    if p.raw:
        where, params = _scoped_params(scope, {"bounds": list(HISTOGRAM_BOUNDS_MS)})
        base = f"FROM metrics_stepmetric WHERE {_spans_sql(p.raw, params)} AND {where}"
        for wid, node, ntype, activity, n, total, lo, hi, wait_sum, wait_n, retries, failed, pcts in _fetch(
            f"""SELECT workflow_id, node_id, node_type, activity, count(*), sum(duration_ms), min(duration_ms),
                    max(duration_ms),
                       sum(queue_wait_ms), count(queue_wait_ms), count(*) FILTER (WHERE attempt > 1),
                       count(*) FILTER (WHERE status = 'failed'),
                       percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms)
                {base} GROUP BY 1, 2, 3, 4""",
            params,
        ):
            key = (wid, node, ntype, activity)
            new[key] = Stats(
                count=n,
                sum_ms=float(total or 0),
                min_ms=lo,
                max_ms=hi,
                percentiles=dict(zip(PERCENTILE_KEYS, pcts, strict=True)),
            )
            e = extra[key]
            e[0] += float(wait_sum or 0)
            e[1] += int(wait_n)
            e[2] += int(retries)
            e[3] += int(failed)
        if old and new:
            for stats in new.values():
                stats.histogram = [0] * NB
            for wid, node, ntype, activity, idx, n in _fetch(
                "SELECT workflow_id, node_id, node_type, activity, width_bucket(duration_ms, "
                f"%(bounds)s::float8[]), count(*) {base} GROUP BY 1, 2, 3, 4, 5",
                params,
            ):
                hist = new[(wid, node, ntype, activity)].histogram
                assert hist is not None
                hist[max(0, min(idx, NB) - 1)] += n
    merged = _combine(old, new)
    ranked = sorted(merged.items(), key=lambda kv: (-(kv[1].percentiles.get("p95_ms") or -1.0), -kv[1].count, kv[0]))[
        :limit
    ]
    if not ranked:
        return []
    names = dict(Workflow.objects.filter(pk__in={k[0] for k, _ in ranked}).values_list("pk", "name"))
    rows = []
    for (wid, node, ntype, activity), st in ranked:
        wait_sum, wait_n, retries, failed = extra[(wid, node, ntype, activity)]
        rows.append(
            {
                "workflow_id": wid,
                "workflow": names.get(wid, f"#{wid}"),
                "node_id": node,
                "node_type": ntype,
                "activity": activity,
                "count": st.count,
                "p50_ms": _round(st.percentiles.get("p50_ms")),
                "p95_ms": _round(st.percentiles.get("p95_ms")),
                "max_ms": _round(st.max_ms),
                "avg_queue_wait_ms": _round(wait_sum / wait_n) if wait_n else None,
                "retries": int(retries),
                "failures": int(failed),
                "exact": st.exact,
            }
        )
    return rows


def failures(scope: Scope, start: datetime, end: datetime, tz: ZoneInfo, *, limit: int = 20) -> dict[str, Any]:
    """Failures by error type, the most failing workflows, and the latest failed runs."""
    total = aggregate(scope, start, end, "all", tz=tz).get(0, Stats())
    workflows = [r for r in by_workflow(scope, start, end, tz) if r["failures"]]
    workflows.sort(key=lambda r: (-r["failures"], -(1 - (r["success_rate"] or 0)), r["workflow"]))
    where, params = _scoped_params(
        scope, {"start": max(start, raw_cutoff()), "end": end, "limit": limit}, "m.workflow_id"
    )
    recent = _fetch(
        f"""SELECT m.execution_id, m.workflow_id, w.name, m.error_type, m.finished_at, m.duration_ms
            FROM metrics_executionmetric m JOIN workflows_workflow w ON w.id = m.workflow_id
            WHERE m.status = 'failed' AND m.finished_at >= %(start)s AND m.finished_at < %(end)s AND {where}
            ORDER BY m.finished_at DESC LIMIT %(limit)s""",
        params,
    )
    return {
        "total_failures": total.failures,
        "count": total.count,
        "failure_rate": round(total.failures / total.count, 4) if total.count else None,
        "by_type": [
            {"error_type": t, "count": n}
            for t, n in sorted(total.failures_by_type.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "by_workflow": [
            {k: r[k] for k in ("workflow_id", "workflow", "count", "failures", "success_rate", "failures_by_type")}
            for r in workflows[:limit]
        ],
        "recent": [
            {
                "execution_id": eid,
                "workflow_id": wid,
                "workflow": name,
                "error_type": et or "unknown",
                "finished_at": fin.isoformat(),
                "duration_ms": _round(d),
            }
            for eid, wid, name, et, fin, d in recent
        ],
        "exact": total.exact,
    }


def _mad_from_histogram(counts: list[int], med: float, lo: float | None, hi: float | None) -> float:
    """Median absolute deviation from `med`, estimated from a histogram whose values are taken as
    evenly spread in each bucket (clamped to [lo, hi], the true min and max)."""
    n = sum(counts)
    if not n:
        return 0.0
    buckets = []
    for i, c in enumerate(counts):
        if not c:
            continue
        left = float(HISTOGRAM_BOUNDS_MS[i])
        right = float(HISTOGRAM_BOUNDS_MS[i + 1]) if i + 1 < NB else (hi if hi is not None else left * 2 or 1.0)
        if lo is not None:
            left = max(left, min(lo, right))
        if hi is not None:
            right = min(right, max(hi, left))
        buckets.append((left, right, c))

    def within(t: float) -> float:
        a, b, mass = med - t, med + t, 0.0
        for left, right, c in buckets:
            if right <= left:
                mass += c if a <= left <= b else 0
            else:
                mass += c * max(0.0, min(b, right) - max(a, left)) / (right - left)
        return mass

    low, high = 0.0, max(abs(med - min(x for x, _, _ in buckets)), abs(max(y for _, y, _ in buckets) - med))
    for _ in range(60):
        mid = (low + high) / 2
        if within(mid) >= n / 2:
            high = mid
        else:
            low = mid
    return high


def anomalies(
    scope: Scope, start: datetime, end: datetime, *, limit: int = 100, complete_until: datetime | None | bool = False
) -> dict[str, Any]:
    """Slow runs and failure-spike hours in [start, end), judged against the 7 days before
    `start`. The baseline (per workflow: P95, median, MAD of run durations; per hour: failed
    runs) comes from the rollups for rolled-up hours, so its P95, median and MAD are estimated
    from the hourly histograms; the slow runs are then read through the (workflow, duration)
    index: only runs above their workflow's threshold. The rules are part of the answer."""
    done = rollups_complete_until() if complete_until is False else complete_until
    assert not isinstance(done, bool)
    base_start = start - timedelta(days=BASELINE_DAYS)
    baseline = aggregate(scope, base_start, start, "workflow", complete_until=done, histograms=True)
    thresholds = []
    base_figures: dict[int, tuple[float, float, float, int]] = {}
    for wid, st in baseline.items():
        if st.count < MIN_BASELINE_RUNS or st.histogram is None:
            continue
        p95, med = st.percentiles.get("p95_ms"), st.percentiles.get("p50_ms")
        if p95 is None or med is None:
            continue
        spread = _mad_from_histogram(st.histogram, float(med), st.min_ms, st.max_ms)
        base_figures[wid] = (float(p95), float(med), spread, st.count)
        thresholds.append((wid, max(2 * float(p95), float(med) + 3 * spread)))
    runs: list[tuple] = []
    if thresholds:
        params: dict[str, Any] = {"start": start, "end": end, "limit": limit}
        values = []
        for i, (wid, threshold) in enumerate(thresholds):
            params[f"w{i}"], params[f"t{i}"] = wid, threshold
            values.append(f"(%(w{i})s::bigint, %(t{i})s::float8)")
        runs = _fetch(
            f"""SELECT m.execution_id, m.workflow_id, w.name, m.status, m.finished_at, m.duration_ms
                FROM (VALUES {", ".join(values)}) AS t(wid, threshold)
                CROSS JOIN LATERAL (
                    SELECT execution_id, workflow_id, status, finished_at, duration_ms FROM metrics_executionmetric
                    WHERE workflow_id = t.wid AND duration_ms > t.threshold AND finished_at >= %(start)s
                      AND finished_at < %(end)s AND status <> 'continued'
                    ORDER BY duration_ms DESC LIMIT %(limit)s
                ) m
                JOIN workflows_workflow w ON w.id = m.workflow_id
                ORDER BY m.duration_ms DESC LIMIT %(limit)s""",
            params,
        )
    slow = []
    for eid, wid, name, st, fin, d in runs:
        p95, med, spread, n = base_figures[wid]
        slow.append(
            {
                "kind": "slow_run",
                "execution_id": eid,
                "workflow_id": wid,
                "workflow": name,
                "status": st,
                "at": fin.isoformat(),
                "duration_ms": _round(d),
                "baseline_p95_ms": _round(p95),
                "baseline_median_ms": _round(med),
                "baseline_mad_ms": _round(spread),
                "baseline_runs": n,
                "threshold_ms": _round(max(2 * p95, med + 3 * spread)),
            }
        )
    # Failed and all runs per UTC hour over the baseline and the range.
    p = plan(base_start, end, done)
    per_hour: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
    if p.rollup is not None:
        where, params = _scoped_params(scope, {"start": p.rollup[0], "end": p.rollup[1]})
        for h, n, total in _fetch(
            "SELECT hour, sum(failures), sum(count) FROM metrics_hourlyrollup WHERE hour >= %(start)s AND hour < "
            "%(end)s "
            f"AND count > 0 AND {where} GROUP BY 1",
            params,
        ):
            per_hour[h][0] += int(n)
            per_hour[h][1] += int(total)
    if p.raw:
        where, params = _scoped_params(scope, {})
        for h, n, total in _fetch(
            f"""SELECT date_trunc('hour', finished_at, 'UTC'), count(*) FILTER (WHERE status = 'failed'), count(*)
                                      FROM metrics_executionmetric WHERE {_spans_sql(p.raw, params)}
                                      AND status <> 'continued' AND {where}
                                      GROUP BY 1""",
            params,
        ):
            per_hour[h][0] += int(n)
            per_hour[h][1] += int(total)
    hourly = [(h, n, total) for h, (n, total) in per_hour.items()]
    baseline_hours = int((start - base_start).total_seconds() // 3600)
    base_counts = [n for h, n, _ in hourly if h < start]
    base_counts += [0] * max(0, baseline_hours - len(base_counts))
    med, spread = median(base_counts) or 0.0, mad(base_counts) or 0.0
    threshold = max(float(MIN_FAILURES_PER_HOUR), med + 3 * spread)
    spikes = [
        {
            "kind": "failure_hour",
            "at": h.isoformat(),
            "failures": n,
            "runs": total,
            "baseline_median": med,
            "baseline_mad": spread,
            "threshold": threshold,
        }
        for h, n, total in sorted(hourly)
        if h >= start and n >= MIN_FAILURES_PER_HOUR and n > med + 3 * spread
    ]
    return {
        "rules": {
            "slow_run": SLOW_RUN_RULE.format(min_runs=MIN_BASELINE_RUNS),
            "failure_hour": FAILURE_HOUR_RULE.format(min_failures=MIN_FAILURES_PER_HOUR),
        },
        "baseline": {"from": base_start.isoformat(), "to": start.isoformat()},
        "slow_runs": slow,
        "failure_hours": spikes,
        "exact": not base_figures,  # the MAD of the baseline is always estimated from a histogram
    }


#
# Rollup and pruning (the periodic task)
#


# What an hourly or daily rollup row carries (rewritten when an hour or a day is rolled up again).
RUN_ROLLUP_FIELDS = [
    "count",
    "successes",
    "failures",
    "cancelled",
    "failures_by_type",
    "sum_ms",
    "min_ms",
    "max_ms",
    "histogram",
    "queue_wait_sum_ms",
    "queue_wait_count",
    "queue_wait_min_ms",
    "queue_wait_max_ms",
    "queue_wait_histogram",
]
STEP_ROLLUP_FIELDS = [
    "count",
    "failures",
    "retries",
    "sum_ms",
    "min_ms",
    "max_ms",
    "histogram",
    "queue_wait_sum_ms",
    "queue_wait_count",
]


def roll_up(start: datetime, end: datetime) -> int:
    """(Re)build the HourlyRollup and StepHourlyRollup rows of the UTC hours in [start, end) from
    raw rows, then the daily rows of the days they touch; returns the hourly rows written. `start`
    and `end` should be whole hours.

    Idempotent: an hour rolled twice ends the same (upserts on workflow + hour, and on workflow +
    hour + node + activity). It does not move RollupState: roll_up_recent does.
    """
    params = {"start": start, "end": end, "bounds": list(HISTOGRAM_BOUNDS_MS)}
    base = (
        "FROM metrics_executionmetric WHERE finished_at >= %(start)s AND finished_at < %(end)s AND status <> "
        "'continued'"
    )
    hour_sql = "date_trunc('hour', finished_at, 'UTC')"

    def empty_run_row() -> dict[str, Any]:
        return {
            "count": 0,
            "successes": 0,
            "failures": 0,
            "cancelled": 0,
            "sum_ms": 0.0,
            "min_ms": None,
            "max_ms": None,
            "histogram": [0] * NB,
            "failures_by_type": {},
            "queue_wait_sum_ms": 0.0,
            "queue_wait_count": 0,
            "queue_wait_min_ms": None,
            "queue_wait_max_ms": None,
            "queue_wait_histogram": [0] * NB,
        }

    rows: dict[tuple, dict] = defaultdict(empty_run_row)
    for wid, hour, count, ok, failed, cancelled, total, lo, hi in _fetch(
        f"""SELECT workflow_id, {hour_sql}, count(*),
                   count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),
                   count(*) FILTER (WHERE status = 'cancelled'),
                   sum(duration_ms), min(duration_ms), max(duration_ms) {base} GROUP BY 1, 2""",
        params,
    ):
        rows[(wid, hour)].update(
            count=count, successes=ok, failures=failed, cancelled=cancelled, sum_ms=total, min_ms=lo, max_ms=hi
        )
    for wid, hour, idx, n in _fetch(
        f"SELECT workflow_id, {hour_sql}, width_bucket(duration_ms, %(bounds)s::float8[]), count(*) {base} GROUP BY "
        "1, 2, 3",
        params,
    ):
        rows[(wid, hour)]["histogram"][max(0, min(idx, NB) - 1)] += n
    for wid, hour, error_type, n in _fetch(
        f"SELECT workflow_id, {hour_sql}, error_type, count(*) {base} AND status = 'failed' GROUP BY 1, 2, 3", params
    ):
        rows[(wid, hour)]["failures_by_type"][error_type or "unknown"] = n
    steps_base = "FROM metrics_stepmetric WHERE finished_at >= %(start)s AND finished_at < %(end)s"
    # Queue waits by workflow and hour (an hour with steps but no finished run gets a row with count 0).
    for wid, hour, total, n, lo, hi in _fetch(
        f"SELECT workflow_id, {hour_sql}, sum(queue_wait_ms), count(queue_wait_ms), min(queue_wait_ms), "
        f"max(queue_wait_ms) {steps_base} "
        "AND queue_wait_ms IS NOT NULL GROUP BY 1, 2",
        params,
    ):
        rows[(wid, hour)].update(
            queue_wait_sum_ms=total or 0.0, queue_wait_count=n, queue_wait_min_ms=lo, queue_wait_max_ms=hi
        )
    for wid, hour, idx, n in _fetch(
        f"SELECT workflow_id, {hour_sql}, width_bucket(queue_wait_ms, %(bounds)s::float8[]), count(*) {steps_base} "
        "AND queue_wait_ms IS NOT NULL GROUP BY 1, 2, 3",
        params,
    ):
        rows[(wid, hour)]["queue_wait_histogram"][max(0, min(idx, NB) - 1)] += n
    objs = [HourlyRollup(workflow_id=wid, hour=hour, **values) for (wid, hour), values in rows.items()]
    HourlyRollup.objects.bulk_create(
        objs,
        update_conflicts=True,
        unique_fields=["workflow", "hour"],
        update_fields=RUN_ROLLUP_FIELDS,
        batch_size=2000,
    )
    # Steps by workflow, node, activity and hour.
    steps: dict[tuple, dict] = {}
    group = f"workflow_id, {hour_sql}, node_id, node_type, activity"
    for wid, hour, node, ntype, activity, n, failed, retries, total, lo, hi, wait_sum, wait_n in _fetch(
        f"""SELECT {group}, count(*), count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE attempt > 1),
                   sum(duration_ms), min(duration_ms), max(duration_ms), coalesce(sum(queue_wait_ms), 0),
                   count(queue_wait_ms)
            {steps_base} GROUP BY 1, 2, 3, 4, 5""",
        params,
    ):
        steps[(wid, hour, node, ntype, activity)] = {
            "count": n,
            "failures": failed,
            "retries": retries,
            "sum_ms": total or 0.0,
            "min_ms": lo,
            "max_ms": hi,
            "queue_wait_sum_ms": wait_sum,
            "queue_wait_count": wait_n,
            "histogram": [0] * NB,
        }
    for wid, hour, node, ntype, activity, idx, n in _fetch(
        f"SELECT {group}, width_bucket(duration_ms, %(bounds)s::float8[]), count(*) {steps_base} GROUP BY 1, 2, 3, "
        "4, 5, 6",
        params,
    ):
        steps[(wid, hour, node, ntype, activity)]["histogram"][max(0, min(idx, NB) - 1)] += n
    step_objs = [
        StepHourlyRollup(workflow_id=wid, hour=hour, node_id=node, node_type=ntype, activity=activity, **values)
        for (wid, hour, node, ntype, activity), values in steps.items()
    ]
    StepHourlyRollup.objects.bulk_create(
        step_objs,
        update_conflicts=True,
        unique_fields=["workflow", "hour", "node_id", "node_type", "activity"],
        update_fields=STEP_ROLLUP_FIELDS,
        batch_size=2000,
    )
    rebuild_daily(start, end)
    return len(objs) + len(step_objs)


def rebuild_daily(start: datetime, end: datetime) -> int:
    """(Re)build the DailyRollup and StepDailyRollup rows of the UTC days touching [start, end)
    from the hourly rollups; returns rows written. Idempotent (upserts)."""
    day_a = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day_b = end.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if day_b < end:
        day_b += timedelta(days=1)
    runs: dict[tuple, DailyRollup] = {}
    for r in HourlyRollup.objects.filter(hour__gte=day_a, hour__lt=day_b).order_by():
        day = r.hour.astimezone(UTC).replace(hour=0)
        d = runs.get((r.workflow_id, day))
        if d is None:
            d = runs[(r.workflow_id, day)] = DailyRollup(
                workflow_id=r.workflow_id,
                day=day,
                histogram=[0] * NB,
                failures_by_type={},
                queue_wait_histogram=[0] * NB,
            )
        d.count += r.count
        d.successes += r.successes
        d.failures += r.failures
        d.cancelled += r.cancelled
        d.sum_ms += r.sum_ms
        d.min_ms = r.min_ms if d.min_ms is None else min(d.min_ms, r.min_ms) if r.min_ms is not None else d.min_ms
        d.max_ms = r.max_ms if d.max_ms is None else max(d.max_ms, r.max_ms) if r.max_ms is not None else d.max_ms
        d.histogram = [
            a + b for a, b in zip(d.histogram, list(r.histogram) + [0] * (NB - len(r.histogram)), strict=True)
        ]
        for t, n in (r.failures_by_type or {}).items():
            d.failures_by_type[t] = d.failures_by_type.get(t, 0) + n
        d.queue_wait_sum_ms += r.queue_wait_sum_ms
        d.queue_wait_count += r.queue_wait_count
        if r.queue_wait_min_ms is not None:
            d.queue_wait_min_ms = (
                r.queue_wait_min_ms if d.queue_wait_min_ms is None else min(d.queue_wait_min_ms, r.queue_wait_min_ms)
            )
        if r.queue_wait_max_ms is not None:
            d.queue_wait_max_ms = (
                r.queue_wait_max_ms if d.queue_wait_max_ms is None else max(d.queue_wait_max_ms, r.queue_wait_max_ms)
            )
        waits = list(r.queue_wait_histogram or [])
        d.queue_wait_histogram = [
            a + b for a, b in zip(d.queue_wait_histogram or [0] * NB, waits + [0] * (NB - len(waits)), strict=True)
        ]
    DailyRollup.objects.bulk_create(
        list(runs.values()),
        update_conflicts=True,
        unique_fields=["workflow", "day"],
        update_fields=RUN_ROLLUP_FIELDS,
        batch_size=2000,
    )
    steps: dict[tuple, StepDailyRollup] = {}
    for sr in StepHourlyRollup.objects.filter(hour__gte=day_a, hour__lt=day_b).order_by():
        day = sr.hour.astimezone(UTC).replace(hour=0)
        key = (sr.workflow_id, day, sr.node_id, sr.node_type, sr.activity)
        sd = steps.get(key)
        if sd is None:
            sd = steps[key] = StepDailyRollup(
                workflow_id=sr.workflow_id,
                day=day,
                node_id=sr.node_id,
                node_type=sr.node_type,
                activity=sr.activity,
                histogram=[0] * NB,
            )
        sd.count += sr.count
        sd.failures += sr.failures
        sd.retries += sr.retries
        sd.sum_ms += sr.sum_ms
        sd.min_ms = (
            sr.min_ms if sd.min_ms is None else min(sd.min_ms, sr.min_ms) if sr.min_ms is not None else sd.min_ms
        )
        sd.max_ms = (
            sr.max_ms if sd.max_ms is None else max(sd.max_ms, sr.max_ms) if sr.max_ms is not None else sd.max_ms
        )
        sd.histogram = [
            a + b for a, b in zip(sd.histogram, list(sr.histogram) + [0] * (NB - len(sr.histogram)), strict=True)
        ]
        sd.queue_wait_sum_ms += sr.queue_wait_sum_ms
        sd.queue_wait_count += sr.queue_wait_count
    StepDailyRollup.objects.bulk_create(
        list(steps.values()),
        update_conflicts=True,
        unique_fields=["workflow", "day", "node_id", "node_type", "activity"],
        update_fields=STEP_ROLLUP_FIELDS,
        batch_size=2000,
    )
    return len(runs) + len(steps)


def mark_complete(until: datetime) -> None:
    """Record that the rollups hold every hour before `until` (never moves it back: two tasks at once are safe)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO metrics_rollupstate (id, complete_until, updated_at) VALUES (1, %s, now())
               ON CONFLICT (id) DO UPDATE SET complete_until = GREATEST(metrics_rollupstate.complete_until,
               EXCLUDED.complete_until),
                                              updated_at = now()""",
            [until],
        )


def roll_up_recent(*, lookback_hours: int = 3, now: datetime | None = None) -> int:
    """Roll up from a few hours before where the rollups are complete (the first time: from the
    oldest raw row) to now, then move RollupState.complete_until to the last hour closed for
    SETTLE (later rows of it, e.g. backfilled runs, are caught by the next call's look-back)."""
    now = now or timezone.now()
    done = rollups_complete_until()
    if done is None:
        firsts = [
            m
            for m in (
                ExecutionMetric.objects.aggregate(m=Min("finished_at"))["m"],
                StepMetric.objects.aggregate(m=Min("finished_at"))["m"],
            )
            if m
        ]
        if not firsts:
            mark_complete(_hour_floor(now - SETTLE))
            return 0
        begin = _hour_floor(min(firsts))
        oldest = HourlyRollup.objects.aggregate(m=Min("hour"))["m"]
        if oldest is not None and oldest < begin:  # hourly rollups from before: their daily sums
            rebuild_daily(oldest, begin)
    else:
        begin = _hour_floor(min(done, now)) - timedelta(hours=lookback_hours)
    complete = _hour_floor(now - SETTLE)
    start = begin
    written = 0
    while start < now:  # a day at a time keeps each statement small after a long pause
        stop = min(start + timedelta(days=1), _hour_floor(now) + timedelta(hours=1))
        written += roll_up(start, stop)
        start = stop
    mark_complete(complete)
    return written


def prune(*, now: datetime | None = None) -> dict[str, int]:
    """Delete raw rows past WB_METRICS_RAW_DAYS and rollups past WB_METRICS_ROLLUP_DAYS."""
    now = now or timezone.now()
    raw_before = now - timedelta(days=settings.WB_METRICS_RAW_DAYS)
    rollup_before = now - timedelta(days=settings.WB_METRICS_ROLLUP_DAYS)
    counts = {
        "executions": ExecutionMetric.objects.filter(finished_at__lt=raw_before)._raw_delete("default"),
        "steps": StepMetric.objects.filter(finished_at__lt=raw_before)._raw_delete("default"),
        "rollups": HourlyRollup.objects.filter(hour__lt=rollup_before)._raw_delete("default"),
        "step_rollups": StepHourlyRollup.objects.filter(hour__lt=rollup_before)._raw_delete("default"),
        # A day goes once its last hour is past the keep.
        "daily_rollups": DailyRollup.objects.filter(day__lt=rollup_before - timedelta(days=1))._raw_delete("default"),
        "step_daily_rollups": StepDailyRollup.objects.filter(day__lt=rollup_before - timedelta(days=1))._raw_delete(
            "default"
        ),
    }
    return counts


def csv_rows(
    scope: Scope, start: datetime, end: datetime, unit: str, tz: ZoneInfo, workflow_names: dict[int, str] | None = None
) -> tuple[list[str], list[list[Any]]]:
    """The export: one row per bucket and workflow (with runs), plus the overall row of each bucket."""
    header = [
        "bucket_start",
        "bucket_end",
        "partial",
        "workflow_id",
        "workflow",
        "count",
        "successes",
        "failures",
        "cancelled",
        "success_rate",
        "p50_ms",
        "p90_ms",
        "p95_ms",
        "p99_ms",
        "avg_ms",
        "min_ms",
        "max_ms",
        "exact",
        "failures_by_type",
    ]
    overall = timeseries(scope, start, end, unit, tz)
    rows: list[list[Any]] = []
    per_workflow: dict[str, list[list[Any]]] = defaultdict(list)
    wf_ids = _fetch(
        "SELECT DISTINCT workflow_id FROM metrics_executionmetric WHERE finished_at >= %(start)s AND "
        f"finished_at < %(end)s AND {_scoped_params(scope, {})[0]}",
        _scoped_params(scope, {"start": start, "end": end})[1],
    ) + _fetch(
        "SELECT DISTINCT workflow_id FROM metrics_hourlyrollup WHERE count > 0 AND hour >= %(start)s AND hour < "
        "%(end)s AND "
        f"{_scoped_params(scope, {})[0]}",
        _scoped_params(scope, {"start": start, "end": end})[1],
    )
    ids = sorted({r[0] for r in wf_ids})
    names = dict(Workflow.objects.filter(pk__in=ids).values_list("pk", "name"))
    for wid in ids:
        for row in timeseries(Scope.workflow(wid), start, end, unit, tz):
            if row["count"]:
                per_workflow[row["bucket"]].append(_csv_line(row, wid, names.get(wid, "")))
    for row in overall:
        rows.append(_csv_line(row, "", "(all)"))
        rows.extend(per_workflow.get(row["bucket"], []))
    return header, rows


def _csv_line(row: dict, wid: Any, name: str) -> list[Any]:
    fbt = ";".join(f"{k}={v}" for k, v in row["failures_by_type"].items())
    return [
        row["bucket"],
        row["bucket_end"],
        "true" if row["partial"] else "false",
        wid,
        name,
        row["count"],
        row["successes"],
        row["failures"],
        row["cancelled"],
        row["success_rate"] if row["success_rate"] is not None else "",
        *(
            "" if row[k] is None else row[k]
            for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "avg_ms", "min_ms", "max_ms")
        ),
        "true" if row["exact"] else "false",
        fbt,
    ]
