"""GET /api/v1/metrics/...: thin callers of apps.metrics.aggregation.

Every endpoint takes the filters of apps.metrics.filters and only reads workflows
the caller may view; a `workflow` they may not view answers 404.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from .. import aggregation
from ..filters import FilterError, MetricsFilter, parse_filters
from .serializers import MetricsSummaryResponse, MetricsTimeseriesResponse

FILTER_PARAMETERS = [
    OpenApiParameter(
        "range",
        OpenApiTypes.STR,
        enum=["hour", "day", "week", "month", "custom"],
        description="The last hour/day/week/month, or custom (from/to). Default day.",
    ),
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="Start (ISO 8601; without an offset, read in tz)."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="End, exclusive (default now)."),
    OpenApiParameter(
        "bucket",
        OpenApiTypes.STR,
        enum=list(aggregation.UNITS),
        description="Time bucket of series (default suits the range).",
    ),
    OpenApiParameter("workflow", OpenApiTypes.INT, description="Only this workflow (404 if you may not view it)."),
    OpenApiParameter(
        "tz", OpenApiTypes.STR, description="IANA time zone of the buckets (default the server's TIME_ZONE)."
    ),
]


def _with_filters(request: Request, build: Callable[[MetricsFilter], dict]) -> Response:
    try:
        filters = parse_filters(request.user, request.query_params)
    except FilterError as exc:
        return Response({exc.field: [exc.message], "code": "invalid_filter"}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"filters": filters.echo(), **build(filters)})


@extend_schema(
    summary="Totals of the range: count, success rate, throughput (over the elapsed part of the range), duration "
    "percentiles, trend against the previous period",
    parameters=FILTER_PARAMETERS,
    responses={200: MetricsSummaryResponse},
)
@api_view(["GET"])
def summary(request: Request) -> Response:
    def build(f: MetricsFilter) -> dict:
        done = aggregation.rollups_complete_until()
        return {
            "summary": aggregation.summary(f.scope, f.start, f.end, f.tz, complete_until=done),
            "workflows": aggregation.by_workflow(f.scope, f.start, f.end, f.tz, complete_until=done),
        }

    return _with_filters(request, build)


@extend_schema(
    summary="One row per time bucket: counts (partial buckets flagged), success rate, P50/P90/P95/P99, failures "
    "by type, queue wait",
    parameters=FILTER_PARAMETERS,
    responses={200: MetricsTimeseriesResponse},
)
@api_view(["GET"])
def timeseries(request: Request) -> Response:
    return _with_filters(request, lambda f: {"series": aggregation.timeseries(f.scope, f.start, f.end, f.bucket, f.tz)})


@extend_schema(
    summary=(
        "Steps (workflow, node, activity) with the highest P95 duration: closed hours from the step rollups "
        '(P50/P95 estimated from their histograms, "exact": false), the open hour from raw rows'
    ),
    parameters=FILTER_PARAMETERS,
    responses={200: OpenApiTypes.OBJECT},
)
@api_view(["GET"])
def slowest_steps(request: Request) -> Response:
    return _with_filters(request, lambda f: {"steps": aggregation.slowest_steps(f.scope, f.start, f.end)})


@extend_schema(
    summary="Failures by error type, the most failing workflows, the latest failed runs",
    parameters=FILTER_PARAMETERS,
    responses={200: OpenApiTypes.OBJECT},
)
@api_view(["GET"])
def failures(request: Request) -> Response:
    return _with_filters(request, lambda f: aggregation.failures(f.scope, f.start, f.end, f.tz))


@extend_schema(
    summary="Slow runs and failure-spike hours, with the rules that flag them",
    parameters=FILTER_PARAMETERS,
    responses={200: OpenApiTypes.OBJECT},
)
@api_view(["GET"])
def anomalies(request: Request) -> Response:
    return _with_filters(request, lambda f: aggregation.anomalies(f.scope, f.start, f.end))


@extend_schema(
    summary="CSV: one row per bucket overall, then one per bucket and workflow (the timeseries fields: counts "
    "per bucket, partial buckets flagged)",
    parameters=FILTER_PARAMETERS,
    responses={(200, "text/csv"): OpenApiTypes.STR},
)
@api_view(["GET"])
def export_csv(request: Request) -> HttpResponse:
    try:
        filters = parse_filters(request.user, request.query_params)
    except FilterError as exc:
        return Response({exc.field: [exc.message], "code": "invalid_filter"}, status=status.HTTP_400_BAD_REQUEST)
    return csv_response(filters)


def csv_response(filters: MetricsFilter) -> HttpResponse:
    header, rows = aggregation.csv_rows(filters.scope, filters.start, filters.end, filters.bucket, filters.tz)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        # A workflow name is user input: keep spreadsheets from reading it as a formula.
        writer.writerow(
            [f"'{v}" if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") and not _is_number(v) else v for v in row]
        )
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    stamp = filters.start.astimezone(filters.tz).strftime("%Y%m%d%H%M")
    response["Content-Disposition"] = f'attachment; filename="metrics-{stamp}-{filters.bucket}.csv"'
    return response


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False
