"""Cron arithmetic for schedules: plain functions, used by the Schedule model and the services."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter
from django.utils import timezone


def next_fire_times(cron: str, tz: str, count: int = 5, *, after: datetime | None = None) -> list[datetime]:
    """The next `count` times `cron` fires in zone `tz` (aware datetimes in that zone)."""
    zone = ZoneInfo(tz)
    start = (after or timezone.now()).astimezone(zone)
    it = croniter(cron, start)
    return [it.get_next(datetime) for _ in range(count)]
