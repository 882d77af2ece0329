"""Aggregation: counts, success rates, throughput and duration percentiles by time bucket,
per workflow and overall; slowest steps, failures, trends and anomalies.

Where the figures come from:
- raw rows (ExecutionMetric, StepMetric) for the last WB_METRICS_RAW_DAYS days:
  percentiles are exact (Postgres percentile_cont over the rows);
- HourlyRollup rows before that: percentiles are estimated from the fixed-bucket
  histograms (apps.metrics.histogram). Every answer says which with "exact".
A bucket that starts before the raw cutoff is served wholly from rollups. Rollups
are UTC hours: in zones whose offset is not a whole hour (Asia/Kolkata), rolled-up
data lands in the local bucket its UTC hour starts in.

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
from django.db.models import Max, Min
from django.utils import timezone

from apps.sharing.services import visible_workflows
from apps.workflows.models import Workflow

from .histogram import estimate_percentile, mad, median
from .models import HISTOGRAM_BOUNDS_MS, ExecutionMetric, HourlyRollup, StepMetric

UTC = ZoneInfo("UTC")
PERCENTILES = (0.5, 0.9, 0.95, 0.99)
PERCENTILE_KEYS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms")
UNITS = ("minute", "hour", "day", "week", "month")
MAX_BUCKETS = 5000

SLOW_RUN_RULE = (
    "a run is anomalous when its duration > 2 × P95 and > median + 3 × MAD of the same workflow's runs "
    "in the 7 days before the range (at least {min_runs} runs there)"
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


def _aligned_cutoff(unit: str | None, tz: ZoneInfo) -> datetime:
    """The raw cutoff moved up to a bucket boundary, so no bucket mixes the two sources."""
    cut = raw_cutoff()
    if unit is None:
        return cut
    floor = bucket_floor(cut, unit, tz)
    return cut if floor == cut else bucket_next(floor, unit, tz)


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


def _raw(scope: Scope, start: datetime, end: datetime, group: str, unit: str | None, tz: ZoneInfo, *, histograms: bool) -> dict[Any, Stats]:
    key = _GROUPS_RAW[group]
    where, params = _scoped_params(scope, {"start": start, "end": end, "unit": unit or "hour", "tz": str(tz), "bounds": list(HISTOGRAM_BOUNDS_MS)})
    base = ("FROM metrics_executionmetric WHERE finished_at >= %(start)s AND finished_at < %(end)s AND status <> "
            f"'continued' AND {where}")
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
        out[k] = Stats(count, ok, failed, cancelled, float(total or 0), lo, hi, dict(zip(PERCENTILE_KEYS, pcts, strict=True)))
    for k, error_type, n in _fetch(f"SELECT {key}, error_type, count(*) {base} AND status = 'failed' GROUP BY 1, 2", params):
        out[k].failures_by_type[error_type or "unknown"] = n
    if histograms and out:
        for stats in out.values():
            stats.histogram = [0] * len(HISTOGRAM_BOUNDS_MS)
        for k, idx, n in _fetch(f"SELECT {key}, width_bucket(duration_ms, %(bounds)s::float8[]), count(*) {base} GROUP BY 1, 2", params):
            histogram = out[k].histogram
            assert histogram is not None  # set for every key just above
            histogram[max(0, min(idx, len(HISTOGRAM_BOUNDS_MS)) - 1)] += n
    return out


def _rollups(scope: Scope, start: datetime, end: datetime, group: str, unit: str | None, tz: ZoneInfo) -> dict[Any, Stats]:
    key = _GROUPS_ROLLUP[group]
    where, params = _scoped_params(scope, {"start": start, "end": end, "unit": unit or "hour", "tz": str(tz)})
    base = f"FROM metrics_hourlyrollup r WHERE hour >= %(start)s AND hour < %(end)s AND {where}"
    out: dict[Any, Stats] = {}
    for k, count, ok, failed, cancelled, total, lo, hi in _fetch(
        f"SELECT {key}, sum(count), sum(successes), sum(failures), sum(cancelled), sum(sum_ms), min(min_ms), "
        f"max(max_ms) {base} GROUP BY 1",
        params,
    ):
        out[k] = Stats(int(count), int(ok), int(failed), int(cancelled), float(total or 0), lo, hi, histogram=[0] * len(HISTOGRAM_BOUNDS_MS), exact=False)
    if not out:
        return out
    with_buckets = base.replace(
        "FROM metrics_hourlyrollup r", "FROM metrics_hourlyrollup r, unnest(r.histogram) WITH ORDINALITY AS h(v, i)"
    )
    for k, idx, n in _fetch(f"SELECT {key}, h.i, sum(h.v) {with_buckets} GROUP BY 1, 2", params):
        histogram = out[k].histogram
        if histogram is not None and 1 <= idx <= len(HISTOGRAM_BOUNDS_MS):  # it is: built with one above
            histogram[idx - 1] += int(n)
    with_failures = base.replace(
        "FROM metrics_hourlyrollup r", "FROM metrics_hourlyrollup r, jsonb_each_text(r.failures_by_type) AS f"
    )
    for k, error_type, n in _fetch(f"SELECT {key}, f.key, sum(f.value::int) {with_failures} GROUP BY 1, 2", params):
        out[k].failures_by_type[error_type] = int(n)
    return out


def _merge(a: Stats, b: Stats) -> Stats:
    """Add two sets of runs; percentiles are then estimated from the summed histograms."""
    merged = Stats(
        a.count + b.count, a.successes + b.successes, a.failures + b.failures, a.cancelled + b.cancelled, a.sum_ms + b.sum_ms,
        min(x for x in (a.min_ms, b.min_ms) if x is not None) if (a.min_ms is not None or b.min_ms is not None) else None,
        max(x for x in (a.max_ms, b.max_ms) if x is not None) if (a.max_ms is not None or b.max_ms is not None) else None,
        exact=False,
    )
    merged.histogram = [x + y for x, y in zip(a.histogram or [0] * len(HISTOGRAM_BOUNDS_MS), b.histogram or [0] * len(HISTOGRAM_BOUNDS_MS), strict=True)]
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


def aggregate(scope: Scope, start: datetime, end: datetime, group: str, *, unit: str | None = None, tz: ZoneInfo | None = None) -> dict[Any, Stats]:
    """Stats of the runs finished in [start, end), grouped by `group` ("bucket", "all", "workflow")."""
    tz = tz or ZoneInfo(settings.TIME_ZONE)
    cut = _aligned_cutoff(unit if group == "bucket" else None, tz)
    if start >= cut:
        return _raw(scope, start, end, group, unit, tz, histograms=False)
    old = _rollups(scope, start, min(end, cut), group, unit, tz)
    new = _raw(scope, max(start, cut), end, group, unit, tz, histograms=bool(old)) if end > cut else {}
    out: dict[Any, Stats] = {}
    for k in set(old) | set(new):  # keys are UTC datetimes, workflow ids or 0
        if k in old and k in new:
            out[k] = _estimate(_merge(old[k], new[k]))
        elif k in old:
            out[k] = _estimate(old[k])
        else:
            out[k] = new[k]
    return out


#
# Public queries (what the API, the dashboard and the CSV export show)
#


def elapsed_hours(start: datetime, end: datetime, now: datetime | None = None) -> float:
    """Hours of [start, end) that have passed: the end capped at now; 0 for a range still to come."""
    end = min(end, now or timezone.now())
    # Subtract in UTC: two datetimes of one zone subtract as wall clocks (a 25-hour day would give 24).
    return max((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600, 0.0)


def summary(scope: Scope, start: datetime, end: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """Totals of [start, end) and of the period of the same length before it, with the trend.
    Throughput is over the elapsed part of the range (see elapsed_hours)."""
    current = aggregate(scope, start, end, "all", tz=tz).get(0, Stats())
    prev_start = start - (end - start)
    previous = aggregate(scope, prev_start, start, "all", tz=tz).get(0, Stats())
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


def timeseries(scope: Scope, start: datetime, end: datetime, unit: str, tz: ZoneInfo) -> list[dict[str, Any]]:
    """One row per bucket of [start, end) in `tz`, empty buckets included (count 0). A row has
    the bucket's start and end and its runs' figures (a count, never a rate); `partial` says the
    bucket is not wholly inside the range that has passed (cut by start, by end, or by now)."""
    starts = bucket_starts(start, end, unit, tz)
    by_bucket = aggregate(scope, start, end, "bucket", unit=unit, tz=tz)
    waits = queue_wait(scope, start, end, unit, tz)
    seen_until = min(end, timezone.now()).astimezone(UTC)
    rows = []
    for i, bucket_start in enumerate(starts):
        bucket_end = starts[i + 1] if i + 1 < len(starts) else bucket_next(bucket_start, unit, tz)
        key = bucket_start.astimezone(UTC)
        stats = by_bucket.get(key, Stats())
        wait = waits.get(key, {})
        rows.append({
            "bucket": bucket_start.isoformat(), "bucket_end": bucket_end.isoformat(),
            "partial": key < start.astimezone(UTC) or bucket_end.astimezone(UTC) > seen_until,
            **stats.as_dict(), "queue_wait_p50_ms": wait.get("p50"), "queue_wait_p95_ms": wait.get("p95"), "queue_wait_avg_ms": wait.get("avg"),
        })
    return rows


def latest_finished(scope: Scope) -> datetime | None:
    """When the newest run in scope finished (raw rows, else rollup hours); None if none ever did."""
    where, params = _scoped_params(scope, {})
    rows = _fetch(
        f"""SELECT coalesce(
                   (SELECT max(finished_at) FROM metrics_executionmetric WHERE status <> 'continued' AND {where}),
                   (SELECT max(hour) FROM metrics_hourlyrollup WHERE {where}))""",
        params,
    )
    return rows[0][0] if rows else None


def queue_wait(scope: Scope, start: datetime, end: datetime, unit: str, tz: ZoneInfo) -> dict[datetime, dict[str, float | None]]:
    """Queue wait (dispatch to start) of the steps finished in each bucket: raw rows only."""
    start = max(start, raw_cutoff())
    if start >= end:
        return {}
    where, params = _scoped_params(scope, {"start": start, "end": end, "unit": unit, "tz": str(tz)})
    rows = _fetch(
        f"""SELECT date_trunc(%(unit)s, finished_at, %(tz)s), avg(queue_wait_ms),
                   percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY queue_wait_ms)
            FROM metrics_stepmetric
            WHERE finished_at >= %(start)s AND finished_at < %(end)s AND queue_wait_ms IS NOT NULL AND {where}
            GROUP BY 1""",
        params,
    )
    return {k: {"avg": _round(avg), "p50": _round(p[0]), "p95": _round(p[1])} for k, avg, p in rows}


def by_workflow(scope: Scope, start: datetime, end: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """Per-workflow stats of [start, end), with the workflow's name; busiest first."""
    stats = aggregate(scope, start, end, "workflow", tz=tz)
    names = dict(Workflow.objects.filter(pk__in=list(stats)).values_list("pk", "name"))
    hours = elapsed_hours(start, end)
    rows = [{"workflow_id": wid, "workflow": names.get(wid, f"#{wid}"), **s.as_dict(hours)} for wid, s in stats.items()]
    rows.sort(key=lambda r: (-r["count"], r["workflow"]))
    return rows


def slowest_steps(scope: Scope, start: datetime, end: datetime, *, limit: int = 20) -> list[dict[str, Any]]:
    """Steps ordered by P95 duration (raw rows: exact, and only within the raw window)."""
    start = max(start, raw_cutoff())
    if start >= end:
        return []
    where, params = _scoped_params(scope, {"start": start, "end": end, "limit": limit}, "s.workflow_id")
    rows = _fetch(
        f"""SELECT s.workflow_id, w.name, s.node_id, s.node_type, s.activity, count(*),
                   percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY s.duration_ms), max(s.duration_ms),
                   avg(s.queue_wait_ms), count(*) FILTER (WHERE s.attempt > 1),
                   count(*) FILTER (WHERE s.status = 'failed')
            FROM metrics_stepmetric s JOIN workflows_workflow w ON w.id = s.workflow_id
            WHERE s.finished_at >= %(start)s AND s.finished_at < %(end)s AND {where}
            GROUP BY 1, 2, 3, 4, 5 ORDER BY 7 DESC NULLS LAST, 6 DESC LIMIT %(limit)s""",
        params,
    )
    return [
        {
            "workflow_id": wid, "workflow": name, "node_id": node, "node_type": ntype, "activity": activity, "count": n,
            "p50_ms": _round(p[0]), "p95_ms": _round(p[1]), "max_ms": _round(hi), "avg_queue_wait_ms": _round(wait),
            "retries": retries, "failures": failed, "exact": True,
        }
        for wid, name, node, ntype, activity, n, p, hi, wait, retries, failed in rows
    ]


def failures(scope: Scope, start: datetime, end: datetime, tz: ZoneInfo, *, limit: int = 20) -> dict[str, Any]:
    """Failures by error type, the most failing workflows, and the latest failed runs."""
    total = aggregate(scope, start, end, "all", tz=tz).get(0, Stats())
    workflows = [r for r in by_workflow(scope, start, end, tz) if r["failures"]]
    workflows.sort(key=lambda r: (-r["failures"], -(1 - (r["success_rate"] or 0)), r["workflow"]))
    where, params = _scoped_params(scope, {"start": max(start, raw_cutoff()), "end": end, "limit": limit}, "m.workflow_id")
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
        "by_type": [{"error_type": t, "count": n} for t, n in sorted(total.failures_by_type.items(), key=lambda kv: (-kv[1], kv[0]))],
        "by_workflow": [{k: r[k] for k in ("workflow_id", "workflow", "count", "failures", "success_rate", "failures_by_type")} for r in workflows[:limit]],
        "recent": [
            {"execution_id": eid, "workflow_id": wid, "workflow": name, "error_type": et or "unknown", "finished_at": fin.isoformat(), "duration_ms": _round(d)}
            for eid, wid, name, et, fin, d in recent
        ],
        "exact": total.exact,
    }


def anomalies(scope: Scope, start: datetime, end: datetime, *, limit: int = 100) -> dict[str, Any]:
    """Slow runs and failure-spike hours in [start, end), judged against the 7 days before
    `start` (raw rows). The rules are part of the answer."""
    base_start = start - timedelta(days=BASELINE_DAYS)
    where, params = _scoped_params(scope, {"start": start, "end": end, "base_start": base_start, "min_runs": MIN_BASELINE_RUNS, "limit": limit})
    runs = _fetch(
        f"""WITH base AS (
                SELECT workflow_id, count(*) AS n,
                       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS med
                FROM metrics_executionmetric
                WHERE finished_at >= %(base_start)s AND finished_at < %(start)s AND status <> 'continued' AND {where}
                GROUP BY workflow_id HAVING count(*) >= %(min_runs)s
            ), spread AS (
                SELECT m.workflow_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(m.duration_ms - b.med)) AS mad
                FROM metrics_executionmetric m JOIN base b ON b.workflow_id = m.workflow_id
                WHERE m.finished_at >= %(base_start)s AND m.finished_at < %(start)s AND m.status <> 'continued'
                GROUP BY m.workflow_id
            )
            SELECT m.execution_id, m.workflow_id, w.name, m.status, m.finished_at, m.duration_ms,
                   b.p95, b.med, s.mad, b.n
            FROM metrics_executionmetric m
            JOIN base b ON b.workflow_id = m.workflow_id
            JOIN spread s ON s.workflow_id = m.workflow_id
            JOIN workflows_workflow w ON w.id = m.workflow_id
            WHERE m.finished_at >= %(start)s AND m.finished_at < %(end)s AND m.status <> 'continued'
              AND m.duration_ms > 2 * b.p95 AND m.duration_ms > b.med + 3 * s.mad
            ORDER BY m.duration_ms DESC LIMIT %(limit)s""",
        params,
    )
    slow = [
        {
            "kind": "slow_run", "execution_id": eid, "workflow_id": wid, "workflow": name, "status": st, "at": fin.isoformat(),
            "duration_ms": _round(d), "baseline_p95_ms": _round(p95), "baseline_median_ms": _round(med), "baseline_mad_ms": _round(spread),
            "baseline_runs": n, "threshold_ms": _round(max(2 * p95, med + 3 * spread)),
        }
        for eid, wid, name, st, fin, d, p95, med, spread, n in runs
    ]
    hourly = _fetch(
        f"""SELECT date_trunc('hour', finished_at) AS h, count(*) FILTER (WHERE status = 'failed'), count(*)
            FROM metrics_executionmetric
            WHERE finished_at >= %(base_start)s AND finished_at < %(end)s AND status <> 'continued' AND {where}
            GROUP BY 1""",
        params,
    )
    baseline_hours = int((start - base_start).total_seconds() // 3600)
    base_counts = [n for h, n, _ in hourly if h < start]
    base_counts += [0] * max(0, baseline_hours - len(base_counts))
    med, spread = median(base_counts) or 0.0, mad(base_counts) or 0.0
    threshold = max(float(MIN_FAILURES_PER_HOUR), med + 3 * spread)
    spikes = [
        {"kind": "failure_hour", "at": h.isoformat(), "failures": n, "runs": total, "baseline_median": med, "baseline_mad": spread, "threshold": threshold}
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
        "exact": True,
    }


#
# Rollup and pruning (the periodic task)
#


def roll_up(start: datetime, end: datetime) -> int:
    """(Re)build the HourlyRollup rows of the UTC hours in [start, end) from raw rows; returns rows written.

    Idempotent: an hour rolled twice ends the same (upsert on workflow + hour).
    """
    params = {"start": start, "end": end, "bounds": list(HISTOGRAM_BOUNDS_MS)}
    base = ("FROM metrics_executionmetric WHERE finished_at >= %(start)s AND finished_at < %(end)s AND status <> "
            "'continued'")
    rows: dict[tuple, dict] = {}
    for wid, hour, count, ok, failed, cancelled, total, lo, hi in _fetch(
        f"""SELECT workflow_id, date_trunc('hour', finished_at, 'UTC'), count(*),
                   count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),
                   count(*) FILTER (WHERE status = 'cancelled'),
                   sum(duration_ms), min(duration_ms), max(duration_ms) {base} GROUP BY 1, 2""",
        params,
    ):
        rows[(wid, hour)] = {
            "count": count, "successes": ok, "failures": failed, "cancelled": cancelled, "sum_ms": total, "min_ms": lo, "max_ms": hi,
            "histogram": [0] * len(HISTOGRAM_BOUNDS_MS), "failures_by_type": {}, "queue_wait_sum_ms": 0.0, "queue_wait_count": 0,
        }
    for wid, hour, idx, n in _fetch("SELECT workflow_id, date_trunc('hour', finished_at, 'UTC'), width_bucket(duration_ms, "
                                    f"%(bounds)s::float8[]), count(*) {base} GROUP BY 1, 2, 3", params):
        rows[(wid, hour)]["histogram"][max(0, min(idx, len(HISTOGRAM_BOUNDS_MS)) - 1)] += n
    for wid, hour, error_type, n in _fetch(f"SELECT workflow_id, date_trunc('hour', finished_at, 'UTC'), error_type, count(*) {base} AND status = "
                                           "'failed' GROUP BY 1, 2, 3", params):
        rows[(wid, hour)]["failures_by_type"][error_type or "unknown"] = n
    for wid, hour, total, n in _fetch(
        """SELECT workflow_id, date_trunc('hour', finished_at, 'UTC'), sum(queue_wait_ms), count(queue_wait_ms)
           FROM metrics_stepmetric WHERE finished_at >= %(start)s AND finished_at < %(end)s GROUP BY 1, 2""",
        params,
    ):
        if (wid, hour) in rows:
            rows[(wid, hour)].update(queue_wait_sum_ms=total or 0.0, queue_wait_count=n)
    objs = [HourlyRollup(workflow_id=wid, hour=hour, **values) for (wid, hour), values in rows.items()]
    HourlyRollup.objects.bulk_create(
        objs, update_conflicts=True, unique_fields=["workflow", "hour"],
        update_fields=["count", "successes", "failures", "cancelled", "failures_by_type", "sum_ms", "min_ms", "max_ms", "histogram", "queue_wait_sum_ms", "queue_wait_count"],
    )
    return len(objs)


def roll_up_recent(*, lookback_hours: int = 3) -> int:
    """Roll up from a few hours before the newest rollup (or the oldest raw row) to now."""

    now = timezone.now()
    newest = HourlyRollup.objects.aggregate(m=Max("hour"))["m"]
    if newest is None:
        newest = ExecutionMetric.objects.aggregate(m=Min("finished_at"))["m"]
        if newest is None:
            return 0
    start = (min(newest, now) - timedelta(hours=lookback_hours)).replace(minute=0, second=0, microsecond=0)
    written = 0
    while start < now:  # a day at a time keeps each statement small after a long pause
        stop = min(start + timedelta(days=1), now + timedelta(hours=1))
        written += roll_up(start, stop)
        start = stop
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
    }
    return counts


def csv_rows(scope: Scope, start: datetime, end: datetime, unit: str, tz: ZoneInfo, workflow_names: dict[int, str] | None = None) -> tuple[list[str], list[list[Any]]]:
    """The export: one row per bucket and workflow (with runs), plus the overall row of each bucket."""
    header = ["bucket_start", "bucket_end", "partial", "workflow_id", "workflow", "count", "successes", "failures", "cancelled", "success_rate",
              "p50_ms", "p90_ms", "p95_ms", "p99_ms", "avg_ms", "min_ms", "max_ms", "exact", "failures_by_type"]
    overall = timeseries(scope, start, end, unit, tz)
    rows: list[list[Any]] = []
    per_workflow: dict[str, list[list[Any]]] = defaultdict(list)

    wf_ids = _fetch(
        "SELECT DISTINCT workflow_id FROM metrics_executionmetric WHERE finished_at >= %(start)s AND "
        f"finished_at < %(end)s AND {_scoped_params(scope, {})[0]}",
        _scoped_params(scope, {"start": start, "end": end})[1],
    ) + _fetch(
        "SELECT DISTINCT workflow_id FROM metrics_hourlyrollup WHERE hour >= %(start)s AND hour < %(end)s AND "
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
    return [row["bucket"], row["bucket_end"], "true" if row["partial"] else "false", wid, name, row["count"], row["successes"], row["failures"], row["cancelled"],
            row["success_rate"] if row["success_rate"] is not None else "",
            *("" if row[k] is None else row[k] for k in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "avg_ms", "min_ms", "max_ms")),
            "true" if row["exact"] else "false", fbt]
