"""Cron schedules: validation, the django-celery-beat mirror, following the workflow, firing through beat."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.executions.models import Execution
from apps.sharing.services import share_workflow
from apps.triggers import services
from apps.triggers.models import Schedule
from tests.conftest import ROOT, _worker_env
from tests.helpers import wait_for, wait_until


def test_a_schedule_is_validated_and_mirrored_into_beat(db, make_workflow, api):
    wf = make_workflow()
    bad = api.post(f"/api/v1/workflows/{wf.pk}/schedules", {"cron": "61 * * * *"}, format="json")
    assert bad.status_code == 400 and "cron" in bad.json()
    assert "cron" in api.post(f"/api/v1/workflows/{wf.pk}/schedules", {"cron": "* * *"}, format="json").json()
    assert "timezone" in api.post(f"/api/v1/workflows/{wf.pk}/schedules", {"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, format="json").json()
    assert "input" in api.post(f"/api/v1/workflows/{wf.pk}/schedules", {"cron": "0 9 * * *", "input": {"order": "x"}}, format="json").json()
    response = api.post(f"/api/v1/workflows/{wf.pk}/schedules", {"cron": "30 9 * * mon-fri", "timezone": "Europe/Paris", "input": {"order": 3}}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert len(data["next_fire_times"]) == 5 and data["active"] is True
    first = datetime.fromisoformat(data["next_fire_times"][0])
    assert (first.hour, first.minute, first.utcoffset()) == (9, 30, first.astimezone(ZoneInfo("Europe/Paris")).utcoffset())
    assert first.weekday() < 5
    task = PeriodicTask.objects.get(workflow_schedule__pk=data["id"])
    assert task.task == "triggers.run_schedule" and task.args == f"[{data['id']}]" and task.enabled
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_week, str(cron.timezone)) == ("30", "9", "mon-fri", "Europe/Paris")
    # Disabling the schedule disables its task; deleting it deletes the task.
    assert api.patch(f"/api/v1/workflows/{wf.pk}/schedules/{data['id']}", {"enabled": False}, format="json").json()["active"] is False
    task.refresh_from_db()
    assert not task.enabled
    assert api.delete(f"/api/v1/workflows/{wf.pk}/schedules/{data['id']}").status_code == 204
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


@pytest.mark.parametrize("expr, field", [("0 0 * * mon#2", "day-of-week"), ("0 0 * * 1#2", "day-of-week"), ("0 0 L * *", "day-of-month"), ("0 0 15W * *", "day-of-month")])
def test_cron_extensions_beat_cannot_run_are_refused_naming_the_field(expr, field):
    # "mon#2" once passed: croniter (the previews' parser then) read it as the second Monday, while
    # beat's crontab reads it as every Monday. "L" was refused as a "weekday literal".
    with pytest.raises(ValueError) as info:
        services.check_cron(expr)
    assert f"the {field} field" in str(info.value) and "no L, W or #" in str(info.value)


def test_plain_names_and_ranges_still_pass():
    for expr in ("0 9 * jul wed", "30 9 * * mon-fri", "0 0 1,15 * *", "*/5 * * * sat-sun"):
        assert services.check_cron(expr) == expr


@pytest.mark.parametrize("expr", ["0 0 31 2 *", "0 0 30 feb *"])
def test_an_expression_that_never_fires_is_refused(expr):
    with pytest.raises(ValueError, match="never (fires|occurs)"):
        services.check_cron(expr)


@pytest.mark.parametrize(
    "cron, tz",
    [
        ("*/15 * * * *", "UTC"),
        ("30 9 * * mon-fri", "Europe/Paris"),
        ("0 2 * * *", "Europe/Paris"),  # 02:00 does not exist on 29 March 2026 in Paris
        ("30 1 * * sun", "America/New_York"),  # 01:30 comes twice on 1 November 2026
        ("0 0 1,15 * *", "Asia/Kolkata"),
        ("5 4 29 2 *", "UTC"),  # leap days only
        ("0 12 * jul wed", "Australia/Sydney"),
        ("0 0 13 * fri", "UTC"),  # day-of-month and day-of-week both restrict (Celery: both must hold)
    ],
)
def test_the_preview_is_when_beat_fires(db, make_workflow, alice, cron, tz):
    """Beat's own decision, asked minute by minute: the schedule beat loads from the database
    (its CrontabSchedule's crontab) is due exactly at each previewed time and at no minute between."""
    wf = make_workflow()
    schedule = services.create_schedule(wf, cron=cron, timezone_name=tz, acting_user=alice)
    beat = PeriodicTask.objects.get(pk=schedule.periodic_task_id).crontab.schedule
    after = datetime(2026, 2, 20, 23, 59, 30, tzinfo=ZoneInfo("UTC"))
    previews = services.next_fire_times(cron, tz, 5, after=after)
    assert previews == schedule.next_fire_times(5, after=after)
    last_run_at = after
    for expected in previews:
        assert not _due(beat, last_run_at, expected - timedelta(seconds=1)), (cron, tz, expected)
        assert _due(beat, last_run_at, expected), (cron, tz, expected)
        last_run_at = expected  # beat records the moment it sent the task
    # And walking forward minute by minute from `after` finds the same first fire (no earlier one).
    if previews[0] - after <= timedelta(days=3):
        moment = after
        while not _due(beat, after, moment):
            moment += timedelta(minutes=1)
        assert moment.replace(second=0) <= previews[0] <= moment


def _due(beat_schedule, last_run_at: datetime, now: datetime) -> bool:
    beat_schedule.nowfun = lambda: now.astimezone(beat_schedule.tz)
    return beat_schedule.is_due(last_run_at.astimezone(beat_schedule.tz)).is_due


def test_next_fire_times_follow_the_time_zone():
    after = datetime(2026, 3, 27, 12, 0, tzinfo=ZoneInfo("UTC"))  # Paris moves to summer time on the 29th
    times = services.next_fire_times("0 9 * * *", "Europe/Paris", 2, after=after)
    assert [t.astimezone(ZoneInfo("UTC")).hour for t in times] == [8, 7]


def test_schedules_need_view_to_list_and_change_to_manage(db, make_workflow, alice, bob, charlie, api_as):
    wf = make_workflow()
    services.create_schedule(wf, cron="0 * * * *", acting_user=alice)
    assert api_as(charlie).get(f"/api/v1/workflows/{wf.pk}/schedules").status_code == 404
    assert api_as(charlie).post(f"/api/v1/workflows/{wf.pk}/schedules", {"cron": "0 * * * *"}, format="json").status_code == 404
    share_workflow(wf, bob, "view", acting_user=alice)
    assert len(api_as(bob).get(f"/api/v1/workflows/{wf.pk}/schedules").json()["results"]) == 1
    assert api_as(bob).post(f"/api/v1/workflows/{wf.pk}/schedules", {"cron": "0 * * * *"}, format="json").status_code == 403


def test_schedules_are_enabled_and_disabled_with_the_workflow(db, make_workflow, alice):
    wf = make_workflow()
    on = services.create_schedule(wf, cron="*/5 * * * *", acting_user=alice)
    off = services.create_schedule(wf, cron="0 0 * * *", enabled=False, acting_user=alice)
    wf.is_active = False
    wf.save()
    assert not PeriodicTask.objects.get(pk=on.periodic_task_id).enabled
    wf.is_active = True
    wf.save()
    assert PeriodicTask.objects.get(pk=on.periodic_task_id).enabled
    assert not PeriodicTask.objects.get(pk=off.periodic_task_id).enabled  # stays as its owner left it


def test_run_schedule_starts_a_run_only_while_active(db, make_workflow, alice):
    wf = make_workflow()
    schedule = services.create_schedule(wf, cron="* * * * *", input={"order": 1}, acting_user=alice)
    execution = services.run_schedule(schedule.pk)
    assert execution.trigger == "schedule" and execution.input == {"order": 1} and execution.created_by == alice
    schedule.refresh_from_db()
    assert schedule.last_execution == execution and schedule.last_fired_at
    services.update_schedule(schedule, enabled=False)
    assert services.run_schedule(schedule.pk) is None
    services.update_schedule(schedule, enabled=True)
    wf.is_active = False
    wf.save()
    assert services.run_schedule(schedule.pk) is None


@pytest.mark.worker
def test_a_cron_schedule_fires_through_celery_beat(worker, make_workflow, alice):
    """A real `celery beat` with the database scheduler. Crontab granularity is a minute, so the
    task's last run is set two minutes back: an every-minute schedule is then due at beat's first tick."""
    wf = make_workflow()
    schedule = services.create_schedule(wf, cron="* * * * *", timezone_name="Europe/Paris", input={"order": 42}, acting_user=alice)
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(last_run_at=timezone.now() - timedelta(minutes=2))
    log = open(ROOT / ".data" / "logs" / f"test-beat-{worker.queue}.log", "ab")
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workflowsite", "beat", "-S", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile=", "-l", "INFO"],
        cwd=ROOT, env=_worker_env(worker.queue), stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        execution = wait_until(lambda: Execution.objects.filter(workflow=wf, trigger="schedule").first(), timeout=60, message="beat to fire the schedule")
    finally:
        beat.terminate()
        beat.wait(20)
    execution = wait_for(execution)
    assert execution.status == "completed" and execution.variables["seen"] == {"order": 42}
    assert Schedule.objects.get(pk=schedule.pk).last_execution == execution
