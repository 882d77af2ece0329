"""The metrics dashboard, the per-workflow panel fragment and the Prometheus endpoint."""

from __future__ import annotations

import hmac
import ipaddress
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import aggregation, charts
from .filters import RANGES, FilterError, MetricsFilter, parse_filters

FAILURE_CLASSES = ["f1", "f2", "f3", "f4", "f5", "f6"]
RUNS_PER_BUCKET_TITLE = {"minute": "Runs per minute", "hour": "Runs per hour", "day": "Runs per day", "week": "Runs per week", "month": "Runs per month"}


#
# Chart building (shared by the dashboard and the panel)
#


def _series_points(series: list[dict], key: str, tz) -> list[tuple[datetime, float | None]]:
    return [(datetime.fromisoformat(row["bucket"]).astimezone(tz), row[key]) for row in series]


def build_charts(filters: MetricsFilter, series: list[dict], anomaly_data: dict | None, *, small: bool = False) -> dict[str, Any]:
    tz = filters.tz
    size = {"width": 360, "height": 150} if small else {}
    times = [datetime.fromisoformat(row["bucket"]).astimezone(tz) for row in series]
    markers: list[charts.Marker] = []
    band_markers: list[charts.Marker] = []
    if anomaly_data:
        for run in anomaly_data["slow_runs"]:
            markers.append(charts.Marker(datetime.fromisoformat(run["at"]).astimezone(tz), run["duration_ms"], f"run {run['execution_id']} ({run['workflow']}): {charts.format_ms(run['duration_ms'])}, threshold {charts.format_ms(run['threshold_ms'])}"))
        for hour in anomaly_data["failure_hours"]:
            at = datetime.fromisoformat(hour["at"]).astimezone(tz)
            band = charts.Marker(at, None, f"{at:%Y-%m-%d %H:00}: {hour['failures']} failed runs (threshold {hour['threshold']:g})")
            markers.append(band)
            band_markers.append(band)
    durations = charts.line_chart(
        [charts.Series("P50", "s1", _series_points(series, "p50_ms", tz)), charts.Series("P95", "s2", _series_points(series, "p95_ms", tz)), charts.Series("P99", "s3", _series_points(series, "p99_ms", tz))],
        title="Run duration percentiles", unit="ms", markers=markers, tz=tz, **size,
    )
    types: dict[str, int] = {}
    for row in series:
        for t, n in row["failures_by_type"].items():
            types[t] = types.get(t, 0) + n
    top = [t for t, _ in sorted(types.items(), key=lambda kv: -kv[1])][:5]
    stacks = [charts.Stack("completed", "ok", [row["successes"] for row in series])]
    for i, t in enumerate(top):
        stacks.append(charts.Stack(t, FAILURE_CLASSES[i], [row["failures_by_type"].get(t, 0) for row in series]))
    if len(types) > len(top):
        stacks.append(charts.Stack("other errors", FAILURE_CLASSES[5], [sum(n for t, n in row["failures_by_type"].items() if t not in top) for row in series]))
    stacks.append(charts.Stack("cancelled", "cancel", [row["cancelled"] for row in series]))
    rate = charts.Series("success rate", "s4", [(t, None if row["success_rate"] is None else row["success_rate"] * 100) for t, row in zip(times, series)])
    outcomes = charts.stacked_bars(times, stacks, title="Outcomes and failures by error type", overlay=rate, tz=tz, markers=band_markers, **size)
    # A count per bucket: a rate of a bucket in progress would be a projection (17 runs in 2 minutes are not 510 an hour).
    ends = [datetime.fromisoformat(row["bucket_end"]).astimezone(tz) for row in series]
    throughput = charts.stacked_bars(times, [charts.Stack("runs finished", "s1", [row["count"] for row in series])], title=RUNS_PER_BUCKET_TITLE[filters.bucket],
                                     tz=tz, ends=ends, partial=[row["partial"] for row in series], **size)
    queue = charts.line_chart(
        [charts.Series("P50", "s1", _series_points(series, "queue_wait_p50_ms", tz)), charts.Series("P95", "s2", _series_points(series, "queue_wait_p95_ms", tz))],
        title="Queue wait of steps (dispatch to start)", unit="ms", tz=tz, **size,
    )
    return {"durations": durations, "outcomes": outcomes, "throughput": throughput, "queue": queue}


#
# Pages
#


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    from apps.sharing.services import visible_workflows

    try:
        filters = parse_filters(request.user, request.GET)
        error = None
    except FilterError as exc:
        error = exc
        filters = parse_filters(request.user, {k: v for k, v in request.GET.items() if k not in ("from", "to", "range", "bucket", "tz", exc.field)})
    series = aggregation.timeseries(filters.scope, filters.start, filters.end, filters.bucket, filters.tz)
    anomaly_data = aggregation.anomalies(filters.scope, filters.start, filters.end)
    workflows = aggregation.by_workflow(filters.scope, filters.start, filters.end, filters.tz)
    slowest = sorted([w for w in workflows if w["p95_ms"] is not None], key=lambda w: -w["p95_ms"])[:8]
    failing = sorted([w for w in workflows if w["failures"]], key=lambda w: (-w["failures"], w["workflow"]))[:8]
    context = {
        "filters": filters,
        "filter_error": error,
        "ranges": [*RANGES, "custom"],
        "buckets": aggregation.UNITS,
        "workflow_choices": visible_workflows(request.user).only("pk", "name").order_by("name"),
        "summary": aggregation.summary(filters.scope, filters.start, filters.end, filters.tz),
        "charts": build_charts(filters, series, anomaly_data),
        "anomalies": anomaly_data,
        "slowest_workflows": slowest,
        "failing_workflows": failing,
        "slowest_steps": aggregation.slowest_steps(filters.scope, filters.start, filters.end, limit=10),
        "csv_url": reverse("api:metrics-export") + "?" + urlencode(filters.as_params()),
        "api_url": reverse("api:metrics-summary") + "?" + urlencode(filters.as_params()),
        "from_local": filters.start.astimezone(filters.tz).strftime("%Y-%m-%dT%H:%M"),
        "to_local": filters.end.astimezone(filters.tz).strftime("%Y-%m-%dT%H:%M"),
    }
    return render(request, "metrics/dashboard.html", context)


@login_required
@require_GET
def workflow_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The metrics panel of one workflow (a fragment for the workflow page's hx-get).
    404 for a workflow the user may not view."""
    from apps.sharing.services import access_workflow

    workflow = access_workflow(request.user, pk, "view")
    params = {"range": request.GET.get("range") or "week", "workflow": str(workflow.pk), "tz": request.GET.get("tz") or ""}
    try:
        filters = parse_filters(request.user, params)
    except FilterError:
        filters = parse_filters(request.user, {"range": "week", "workflow": str(workflow.pk)})
    series = aggregation.timeseries(filters.scope, filters.start, filters.end, filters.bucket, filters.tz)
    context = {
        "workflow": workflow,
        "filters": filters,
        "summary": aggregation.summary(filters.scope, filters.start, filters.end, filters.tz),
        "charts": build_charts(filters, series, aggregation.anomalies(filters.scope, filters.start, filters.end), small=True),
        "dashboard_url": reverse("metrics:dashboard") + "?" + urlencode(filters.as_params()),
        "csv_url": reverse("api:metrics-export") + "?" + urlencode(filters.as_params()),
        "ranges": list(RANGES),
    }
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
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
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
        return HttpResponseForbidden("Forbidden: send Authorization: Bearer <WB_METRICS_TOKEN> or scrape from an allowed address.\n", content_type="text/plain")
    from .prometheus import render as render_metrics

    return HttpResponse(render_metrics(), content_type="text/plain; version=0.0.4; charset=utf-8")
