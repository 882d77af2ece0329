"""The filters every metrics endpoint and page takes, parsed and checked in one place.

range     hour | day | week | month (the last one, up to now), or custom with from/to
from, to  ISO 8601; a time without an offset is read in `tz`
bucket    minute | hour | day | week | month (default: suits the range)
workflow  a workflow id the user may view (404 otherwise)
tz        an IANA zone name (default settings.TIME_ZONE)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.sharing.services import access_workflow

from .aggregation import MAX_BUCKETS, UNITS, Scope, bucket_next, bucket_starts, raw_cutoff

if TYPE_CHECKING:
    from apps.workflows.models import Workflow

RANGES = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}
DEFAULT_BUCKET = {"hour": "minute", "day": "hour", "week": "hour", "month": "day"}
EARLIEST_YEAR, LATEST_YEAR = 1970, 2999
# What the dashboard's form calls each parameter (errors name the field the user sees).
FIELD_LABELS = {
    "range": "Range",
    "from": "From",
    "to": "To",
    "bucket": "Bucket",
    "workflow": "Workflow",
    "tz": "Time zone",
}


class FilterError(ValueError):
    """A bad filter: `field` is the query parameter, `message` reads after the field's name."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    @property
    def label(self) -> str:
        """The field as the dashboard's form labels it."""
        return FIELD_LABELS.get(self.field, self.field)


@dataclass
class MetricsFilter:
    start: datetime
    end: datetime
    bucket: str
    tz: ZoneInfo
    range: str
    workflow: Workflow | None
    scope: Scope
    bucket_auto: bool = False  # no bucket was asked for: the range's default

    def as_params(self) -> dict[str, str]:
        """Query parameters that reproduce this filter (for links: CSV export, API)."""
        params = {"tz": str(self.tz), "bucket": self.bucket}
        if self.range == "custom":
            params.update(
                {"from": self.start.astimezone(self.tz).isoformat(), "to": self.end.astimezone(self.tz).isoformat()}
            )
        else:
            params["range"] = self.range
        if self.workflow is not None:
            params["workflow"] = str(self.workflow.pk)
        return params

    def echo(self) -> dict[str, object]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "bucket": self.bucket,
            "tz": str(self.tz),
            "range": self.range,
            "workflow": self.workflow.pk if self.workflow is not None else None,
        }


def _parse_moment(field: str, raw: str, tz: ZoneInfo) -> datetime:
    not_iso = FilterError(field, f"not an ISO 8601 date or time: {raw!r} (for example 2026-11-23 or 2026-11-23T14:00)")
    try:
        # Both raise ValueError for a well-formed impossible moment (2026-02-30).
        value = parse_datetime(raw)
        if value is None:
            day = parse_date(raw)
            if day is None:
                raise not_iso
            value = datetime(day.year, day.month, day.day)
    except ValueError:
        raise not_iso from None
    # The reports reach back before the start (the previous period, the anomalies' baseline) and
    # past the end (the last bucket): near year 1 or 9999 that leaves datetime's range (a 500).
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise FilterError(field, f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    if timezone.is_naive(value):
        value = value.replace(tzinfo=tz)
    return value


def parse_filters(user, params) -> MetricsFilter:
    """Raise FilterError naming the bad parameter; Http404 for a workflow the user may not view."""
    raw_tz = (params.get("tz") or settings.TIME_ZONE).strip()
    try:
        tz = ZoneInfo(raw_tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise FilterError("tz", f"unknown time zone {raw_tz!r}: use an IANA name such as Europe/Paris or UTC") from None

    now = timezone.now()
    raw_from, raw_to = params.get("from") or "", params.get("to") or ""
    rng = params.get("range") or ("custom" if raw_from or raw_to else "day")
    if rng == "custom":
        if not raw_from:
            raise FilterError("from", "a custom range needs a start (from); the end (to) defaults to now")
        start = _parse_moment("from", raw_from, tz)
        end = _parse_moment("to", raw_to, tz) if raw_to else now
        if end <= start:
            raise FilterError("to", "must be later than the start (from)")
    elif rng in RANGES:
        end, start = now, now - RANGES[rng]
    else:
        raise FilterError("range", f"use one of: {', '.join(RANGES)}, custom")

    bucket_auto = not params.get("bucket")
    bucket = params.get("bucket") or (DEFAULT_BUCKET.get(rng) or _bucket_for(end - start))
    if bucket not in UNITS:
        raise FilterError("bucket", f"use one of: {', '.join(UNITS)}")
    if bucket == "minute" and start < raw_cutoff():
        raise FilterError(
            "bucket",
            f"minute buckets exist only for the last {settings.WB_METRICS_RAW_DAYS} days (raw data): choose hour "
            "or larger",
        )
    try:
        bucket_starts(start, end, bucket, tz)
    except ValueError:
        raise FilterError(
            "bucket", f"more than {MAX_BUCKETS} {bucket} buckets in this range: choose a larger bucket"
        ) from None

    workflow = None
    raw_wf = params.get("workflow") or ""
    if raw_wf:
        if not str(raw_wf).isdigit():
            raise FilterError("workflow", "must be a workflow id")

        workflow = access_workflow(user, int(raw_wf), "view")
    scope = Scope.for_user(user, workflow.pk if workflow is not None else None)
    return MetricsFilter(start, end, bucket, tz, rng, workflow, scope, bucket_auto)


def _bucket_for(span: timedelta) -> str:
    if span <= timedelta(hours=2):
        return "minute"
    if span <= timedelta(days=8):
        return "hour"
    if span <= timedelta(days=120):
        return "day"
    return "week"


__all__ = ["FilterError", "MetricsFilter", "parse_filters", "bucket_next"]
