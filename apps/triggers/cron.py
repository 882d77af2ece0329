"""Cron arithmetic for schedules: plain functions, used by the Schedule model and the services."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.utils import timezone
from django_celery_beat.models import CrontabSchedule


def beat_crontab(cron: str, tz: str):
    """The schedule object beat itself evaluates for `cron` in zone `tz`: the `.schedule` of the
    CrontabSchedule row sync_schedule writes (django-celery-beat's TzAwareCrontab, a Celery crontab).
    Previews are computed from it, so there is one cron parser and what the page shows is what fires."""
    minute, hour, dom, month, dow = cron.split()
    row = CrontabSchedule(
        minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow, timezone=ZoneInfo(tz)
    )
    return row.schedule


def next_fire_times(cron: str, tz: str, count: int = 5, *, after: datetime | None = None) -> list[datetime]:
    """The next `count` times beat fires `cron` in zone `tz` (aware datetimes in that zone), strictly after
    `after` (default now). Beat fires once `last_run_at + delta` has passed, delta being what the crontab's
    remaining_delta(last_run_at) answers, and then takes that moment as the new last_run_at: the same walk."""
    schedule = beat_crontab(cron, tz)
    zone = ZoneInfo(tz)
    moment = (after or timezone.now()).astimezone(zone)
    times: list[datetime] = []
    for _ in range(count):
        last_run_at, delta, _now = schedule.remaining_delta(moment)
        moment = (last_run_at + delta).astimezone(zone)
        times.append(moment)
    return times
