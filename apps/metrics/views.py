"""The metrics dashboard, the per-workflow panel fragment and the Prometheus endpoint."""

from __future__ import annotations

import hmac
import ipaddress
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.timesince import timesince
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.accounts.services import client_ip
from apps.sharing.services import access_workflow, visible_workflows

from . import aggregation, charts
from .filters import RANGES, FilterError, MetricsFilter, parse_filters
from .prometheus import render as render_metrics

FAILURE_CLASSES = ["f1", "f2", "f3", "f4", "f5", "f6"]
RUNS_PER_BUCKET_TITLE = {
    "minute": "Runs per minute",
    "hour": "Runs per hour",
    "day": "Runs per day",
    "week": "Runs per week",
    "month": "Runs per month",
}


#
# Chart building (shared by the dashboard and the panel)
#


def _spans(filters: MetricsFilter, series: list[dict], now: datetime) -> list[tuple[datetime, datetime, dict]]:
    """The buckets that have begun, each with the part of it inside the range so far
    (a bucket cut by the range's start, its end or now is drawn over that part only)."""
    tz = filters.tz
    seen_until = min(filters.end, now)
    out = []
    for row in series:
        start = datetime.fromisoformat(row["bucket"]).astimezone(tz)
        if start >= seen_until:
            break
        end = datetime.fromisoformat(row["bucket_end"]).astimezone(tz)
        out.append((max(start, filters.start.astimezone(tz)), min(end, seen_until.astimezone(tz)), row))
    return out


def build_charts(
    filters: MetricsFilter, series: list[dict], anomaly_data: dict | None, *, now: datetime | None = None
) -> dict[str, Any]:
    """The dashboard's SVG charts over the range so far (its end capped at now)."""
    tz = filters.tz
    now = now or timezone.now()
    spans = _spans(filters, series, now)
    domain = (filters.start.astimezone(tz), min(filters.end, now).astimezone(tz))
    starts, ends, rows = [a for a, _, _ in spans], [b for _, b, _ in spans], [r for _, _, r in spans]
    middles = [a + (b - a) / 2 for a, b, _ in spans]

    def points(key: str) -> list[tuple[datetime, float | None]]:
        return [(t, row[key]) for t, row in zip(middles, rows, strict=True)]

    markers: list[charts.Marker] = []
    bands: list[charts.Marker] = []
    if anomaly_data:
        for run in anomaly_data["slow_runs"]:
            label = (
                f"Run #{run['execution_id']} of {run['workflow']} took "
                f"{charts.format_ms(run['duration_ms'])} (slow-run threshold "
                f"{charts.format_ms(run['threshold_ms'])})"
            )
            markers.append(charts.Marker(datetime.fromisoformat(run["at"]).astimezone(tz), run["duration_ms"], label))
        for hour in anomaly_data["failure_hours"]:
            at = datetime.fromisoformat(hour["at"]).astimezone(tz)
            until = at + timedelta(hours=1)
            label = (
                f"{charts.span_label(at, until, tz)}: {hour['failures']} of {hour['runs']} runs failed "
                f"(flagged from {hour['threshold']:g})"
            )
            bands.append(charts.Marker(at, None, label, until=until))
    durations = charts.line_chart(
        [
            charts.Series("P50", "s1", points("p50_ms")),
            charts.Series("P95", "s2", points("p95_ms")),
            charts.Series("P99", "s3", points("p99_ms")),
        ],
        title="Run duration percentiles",
        unit="ms",
        markers=markers + bands,
        tz=tz,
        domain=domain,
        empty="No finished runs in this range.",
    )
    types: dict[str, int] = {}
    for row in rows:
        for t, n in row["failures_by_type"].items():
            types[t] = types.get(t, 0) + n
    top = [t for t, _ in sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))][:5]
    stacks = [charts.Stack("completed", "ok", [row["successes"] for row in rows])]
    for i, t in enumerate(top):
        stacks.append(charts.Stack(t, FAILURE_CLASSES[i], [row["failures_by_type"].get(t, 0) for row in rows]))
    if len(types) > len(top):
        stacks.append(
            charts.Stack(
                "other errors",
                FAILURE_CLASSES[5],
                [sum(n for t, n in row["failures_by_type"].items() if t not in top) for row in rows],
            )
        )
    stacks.append(charts.Stack("cancelled", "cancel", [row["cancelled"] for row in rows]))
    rate = charts.Series(
        "success rate",
        "s4",
        [
            (t, None if row["success_rate"] is None else row["success_rate"] * 100)
            for t, row in zip(middles, rows, strict=True)
        ],
    )
    partial = [row["partial"] for row in rows]
    outcomes = charts.stacked_bars(
        starts,
        stacks,
        title="Outcomes and failures by error type",
        overlay=rate,
        tz=tz,
        markers=bands,
        ends=ends,
        partial=partial,
        domain=domain,
        empty="No finished runs in this range.",
    )
    throughput = charts.stacked_bars(
        starts,
        [charts.Stack("runs finished", "s1", [row["count"] for row in rows])],
        title=RUNS_PER_BUCKET_TITLE[filters.bucket],
        tz=tz,
        ends=ends,
        partial=partial,
        domain=domain,
        empty="No finished runs in this range.",
    )
    queue = charts.line_chart(
        [
            charts.Series("P50", "s1", points("queue_wait_p50_ms")),
            charts.Series("P95", "s2", points("queue_wait_p95_ms")),
        ],
        title="Queue wait of steps (dispatch to start)",
        unit="ms",
        tz=tz,
        domain=domain,
        empty="No step waited in the queue in this range (steps the engine runs inline never do).",
    )
    return {"durations": durations, "outcomes": outcomes, "throughput": throughput, "queue": queue}


def range_phrase(filters: MetricsFilter) -> str:
    """ "the last day", or "from Nov 20 14:00 to Nov 23 09:30" for a custom range."""
    if filters.range != "custom":
        return f"the last {filters.range}"
    start, end = filters.start.astimezone(filters.tz), filters.end.astimezone(filters.tz)
    return f"from {start:%b} {start.day} {start:%H:%M} to {end:%b} {end.day} {end:%H:%M}"


def empty_state(filters: MetricsFilter, *, has_workflows: bool = True, now: datetime | None = None) -> dict[str, Any]:
    """What to tell someone whose range holds no finished run, and where to look instead."""
    now = now or timezone.now()
    subject = "this workflow" if filters.workflow is not None else "your workflows"
    if not has_workflows:
        return {
            "title": "No workflows yet",
            "text": "Metrics show how runs of your workflows go: durations, outcomes, failures, queue wait. "
            "Create a workflow or start from a template, press Run…, and its figures appear here once it finishes.",
            "kind": "no-workflows",
        }
    if filters.start >= now:
        return {
            "title": "This range has not started yet",
            "text": f"It starts {filters.start.astimezone(filters.tz):%Y-%m-%d %H:%M} ({filters.tz}).",
            "kind": "future",
        }
    latest = aggregation.latest_finished(filters.scope)
    if latest is None:
        return {
            "title": "No finished runs yet",
            "kind": "no-runs",
            "text": f"Nothing has run to the end for {subject} yet. When a run finishes (completed, failed or "
            "cancelled) its duration, outcome "
            "and queue wait show up here; runs still in progress are on their live pages.",
        }
    ago = now - latest
    suggestion = next((r for r in ("day", "week", "month") if ago < RANGES[r]), None)
    query = {k: v for k, v in filters.as_params().items() if k in ("tz", "workflow")}
    if suggestion:
        query["range"] = suggestion
        label = f"Show the last {suggestion}"
    else:
        day_before = (latest - timedelta(days=1)).astimezone(filters.tz)
        query.update({"range": "custom", "from": day_before.strftime("%Y-%m-%dT%H:%M")})
        label = f"Show from {day_before:%b} {day_before.day} on"
    return {
        "title": f"No runs finished {'' if filters.range == 'custom' else 'in '}{range_phrase(filters)}",
        "kind": "none-in-range",
        "text": f"The latest run of {subject} finished {latest.astimezone(filters.tz):%Y-%m-%d %H:%M} "
        f"({'just now' if ago < timedelta(minutes=1) else timesince(latest, now) + ' ago'}).",
        "link_label": label,
        "query": urlencode(query),
        "range": suggestion,
    }


#
# Pages
#


def _fallback_filters(user, params, error: FilterError) -> MetricsFilter:
    """The filters to show data for while the form shows the user's bad input and its error:
    without the bad field (and, for a bad range, without the range's other fields)."""
    drop = {"range", "from", "to"} if error.field in ("range", "from", "to") else {error.field}
    try:
        return parse_filters(user, {k: v for k, v in params.items() if k not in drop})
    except FilterError:
        return parse_filters(user, {})


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    error: FilterError | None = None
    try:
        filters = parse_filters(request.user, request.GET)
    except FilterError as exc:
        error = exc
        filters = _fallback_filters(request.user, request.GET, exc)
    now = timezone.now()
    workflow_choices = list(visible_workflows(request.user).only("pk", "name").order_by("name"))
    done = aggregation.rollups_complete_until()  # read once: every figure of the page splits at the same hour
    summary = aggregation.summary(filters.scope, filters.start, filters.end, filters.tz, complete_until=done)
    form = {
        "range": filters.range,
        "from": filters.start.astimezone(filters.tz).strftime("%Y-%m-%dT%H:%M"),
        "to": filters.end.astimezone(filters.tz).strftime("%Y-%m-%dT%H:%M"),
        "bucket": "" if filters.bucket_auto else filters.bucket,
        "tz": str(filters.tz),
    }
    if error is not None:  # show what the user typed, next to what is wrong with it
        form.update({k: request.GET[k] for k in ("range", "from", "to", "bucket", "tz") if k in request.GET})
    context: dict[str, Any] = {
        "filters": filters,
        "filter_error": error,
        "form": form,
        "range_phrase": range_phrase(filters),
        "range_open": filters.range == "custom" and filters.end > now,
        "ranges": [*RANGES, "custom"],
        "buckets": aggregation.UNITS,
        "default_bucket": filters.bucket if filters.bucket_auto else None,
        "workflow_choices": workflow_choices,
        "summary": summary,
        "csv_url": reverse("api:metrics-export") + "?" + urlencode(filters.as_params()),
        "api_url": reverse("api:metrics-summary") + "?" + urlencode(filters.as_params()),
    }
    if not summary["count"]:
        context["empty"] = empty_state(filters, has_workflows=bool(workflow_choices), now=now)
    else:
        series = aggregation.timeseries(
            filters.scope, filters.start, filters.end, filters.bucket, filters.tz, complete_until=done
        )
        anomaly_data = aggregation.anomalies(filters.scope, filters.start, filters.end, complete_until=done)
        workflows = aggregation.by_workflow(filters.scope, filters.start, filters.end, filters.tz, complete_until=done)
        context.update(
            {
                "charts": build_charts(filters, series, anomaly_data, now=now),
                "anomalies": anomaly_data,
                "anomaly_rows": anomaly_rows(anomaly_data, filters.tz),
                "slowest_workflows": sorted(
                    [w for w in workflows if w["p95_ms"] is not None], key=lambda w: -w["p95_ms"]
                )[:8],
                "failing_workflows": sorted(
                    [w for w in workflows if w["failures"]], key=lambda w: (-w["failures"], w["workflow"])
                )[:8],
                "slowest_steps": aggregation.slowest_steps(
                    filters.scope, filters.start, filters.end, limit=10, complete_until=done
                ),
                "workflow_query": urlencode({k: v for k, v in filters.as_params().items() if k != "workflow"}),
            }
        )
    return render(request, "metrics/dashboard.html", context)


def anomaly_rows(anomaly_data: dict, tz) -> list[dict[str, Any]]:
    """The anomaly list, newest first, with local times: slow runs and failure hours together."""
    rows = []
    for run in anomaly_data["slow_runs"]:
        rows.append(
            {
                "kind": "slow_run",
                "at": datetime.fromisoformat(run["at"]).astimezone(tz),
                **{k: run[k] for k in ("execution_id", "workflow", "duration_ms", "threshold_ms")},
            }
        )
    for hour in anomaly_data["failure_hours"]:
        at = datetime.fromisoformat(hour["at"]).astimezone(tz)
        rows.append(
            {
                "kind": "failure_hour",
                "at": at,
                "until": at + timedelta(hours=1),
                **{k: hour[k] for k in ("failures", "runs", "threshold")},
            }
        )
    rows.sort(key=lambda r: r["at"], reverse=True)
    return rows


@login_required
@require_GET
def workflow_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The metrics panel of one workflow (a fragment for the workflow page's hx-get).
    404 for a workflow the user may not view."""
    workflow = access_workflow(request.user, pk, "view")
    params = {
        "range": request.GET.get("range") or "week",
        "workflow": str(workflow.pk),
        "tz": request.GET.get("tz") or "",
    }
    try:
        filters = parse_filters(request.user, params)
    except FilterError:
        filters = parse_filters(request.user, {"range": "week", "workflow": str(workflow.pk)})
    summary = aggregation.summary(filters.scope, filters.start, filters.end, filters.tz)
    context: dict[str, Any] = {
        "workflow": workflow,
        "filters": filters,
        "summary": summary,
        "range_phrase": range_phrase(filters),
        "dashboard_url": reverse("metrics:dashboard") + "?" + urlencode(filters.as_params()),
        "csv_url": reverse("api:metrics-export") + "?" + urlencode(filters.as_params()),
        "ranges": list(RANGES),
    }
    if not summary["count"]:
        context["empty"] = empty_state(filters)
    else:
        series = aggregation.timeseries(filters.scope, filters.start, filters.end, filters.bucket, filters.tz)
        context["charts"] = build_charts(
            filters, series, aggregation.anomalies(filters.scope, filters.start, filters.end)
        )
    return render(request, "metrics/_workflow_panel.html", context)


#
# Prometheus
#


def _client_allowed(request: HttpRequest) -> bool:
    token = settings.WB_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    allowed = settings.WB_METRICS_ALLOWED_IPS
    if allowed:
        try:
            address = ipaddress.ip_address(client_ip(request) or "")
        except ValueError:
            return False
        for entry in allowed:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


@require_GET
@never_cache
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint: Bearer WB_METRICS_TOKEN or an address in WB_METRICS_ALLOWED_IPS; 403 otherwise."""
    if not _client_allowed(request):
        return HttpResponseForbidden(
            "Forbidden: send Authorization: Bearer <WB_METRICS_TOKEN> or scrape from an allowed address.\n",
            content_type="text/plain",
        )

    return HttpResponse(render_metrics(), content_type="text/plain; version=0.0.4; charset=utf-8")
