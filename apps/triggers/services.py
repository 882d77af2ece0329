"""Triggers: cron schedules (mirrored into django-celery-beat), events, inbound webhooks.

Views, the admin and tasks call these; each assumes its input was checked by the
matching check_… function (serializers call those).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from celery.schedules import crontab
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks
from jsonschema import Draft202012Validator

from apps.accounts.services import record_audit
from apps.connectors.activities.notify import verify
from apps.connectors.crypto import SecretUnreadable
from apps.executions.engine.orchestrator import InputError, start_execution
from apps.sharing.services import can_run_as, visible_workflows
from apps.workflows import jsontext
from apps.workflows.definition import expressions
from apps.workflows.definition.schema import CONDITION
from apps.workflows.definition.validator import DefinitionError

from .cron import next_fire_times
from .models import EventTrigger, Schedule, WebhookEndpoint

logger = logging.getLogger("workflow.triggers")

RUN_SCHEDULE_TASK = "triggers.run_schedule"


class TriggerError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None):
        self.status = status
        self.message = message
        self.field = field
        super().__init__(message)


#
# Schedules
#


CRON_LABELS = {
    "minute": "minute",
    "hour": "hour",
    "day_of_month": "day-of-month",
    "month_of_year": "month",
    "day_of_week": "day-of-week",
}


def check_cron(expr: str) -> str:
    """Return the normalised five-field expression; ValueError with a readable message otherwise."""
    fields = str(expr or "").split()
    if len(fields) != 5:
        raise ValueError("use five fields: minute hour day-of-month month day-of-week (e.g. '*/15 * * * *')")
    normalised = " ".join(fields)
    minute, hour, dom, month, dow = fields
    names = {"minute": minute, "hour": hour, "day_of_month": dom, "month_of_year": month, "day_of_week": dow}
    for key, value in names.items():
        # Other cron dialects read L, W and # (last, weekday-nearest, nth weekday); Celery's crontab does
        # not, and it even reads "mon#2" as plain "mon" (every Monday): refuse them before they are mis-scheduled.
        if "#" in value or any(
            re.fullmatch(r"(?i)\d*[lw]|lw|[a-z]{3}l|\d+l", part) for part in re.split(r"[,/-]", value)
        ):
            raise ValueError(
                f"'{normalised}' cannot be scheduled: the {CRON_LABELS[key]} field '{value}' is not supported "
                "(beat's crontab has no L, W or # extensions)"
            )
    try:
        crontab(minute=minute, hour=hour, day_of_month=dom, month_of_year=month, day_of_week=dow)
    except Exception as exc:
        # Celery's own message can name the wrong field ("weekday literal 'L'" for a day-of-month L):
        # find the field it refuses and say which one it is.
        for key, value in names.items():
            try:
                crontab(**{k: ("*" if k != key else v) for k, v in names.items()})
            except Exception:
                raise ValueError(
                    f"'{normalised}' is not a valid cron expression: "
                    f"the {CRON_LABELS[key]} field '{value}' is not understood"
                ) from None
        raise ValueError(f"'{normalised}' is not a valid cron expression: {exc}") from None
    try:  # "0 0 31 2 *" parses but never comes: Celery gives up looking for it after 2,000 months
        next_fire_times(normalised, "UTC", 1)
    except RuntimeError:
        raise ValueError(f"'{normalised}' never fires (no such day in those months)") from None
    return normalised


def check_timezone(name: str) -> str:
    if not name or name not in available_timezones():
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(
                f"'{name}' is not a time zone name (use an IANA name such as Europe/Paris or UTC)"
            ) from None
    return name


def _task_name(schedule: Schedule) -> str:
    return f"workflow schedule {schedule.pk} (workflow {schedule.workflow_id})"


def sync_schedule(schedule: Schedule) -> None:
    """Create or update the schedule's PeriodicTask and CrontabSchedule (beat picks up the change)."""
    minute, hour, dom, month, dow = schedule.cron.split()
    crontab_row, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=dom,
        month_of_year=month,
        day_of_week=dow,
        timezone=ZoneInfo(schedule.timezone),
    )
    enabled = bool(schedule.enabled and schedule.workflow.is_active)
    task = schedule.periodic_task
    if task is None:
        task = PeriodicTask(name=_task_name(schedule), task=RUN_SCHEDULE_TASK)
    task.crontab = crontab_row
    task.interval = None
    task.args = json.dumps([schedule.pk])
    task.enabled = enabled
    task.description = f"Starts a run of workflow {schedule.workflow_id} ({schedule.workflow.name})."
    task.save()  # PeriodicTask.save marks the schedule changed for beat
    if schedule.periodic_task_id != task.pk:
        schedule.periodic_task = task
        Schedule.objects.filter(pk=schedule.pk).update(periodic_task=task)


@transaction.atomic
def create_schedule(
    workflow,
    *,
    cron: str,
    timezone_name: str = "UTC",
    input: dict | None = None,
    enabled: bool = True,
    name: str = "",
    acting_user=None,
) -> Schedule:
    schedule = Schedule.objects.create(
        workflow=workflow,
        cron=cron,
        timezone=timezone_name,
        input=input or {},
        enabled=enabled,
        name=name,
        created_by=acting_user if getattr(acting_user, "is_authenticated", False) else None,
    )
    sync_schedule(schedule)
    return schedule


@transaction.atomic
def update_schedule(schedule: Schedule, **changes: Any) -> Schedule:
    for key, value in changes.items():
        setattr(schedule, "timezone" if key == "timezone_name" else key, value)
    schedule.save()
    sync_schedule(schedule)
    return schedule


@transaction.atomic
def delete_schedule(schedule: Schedule) -> None:
    task = schedule.periodic_task
    schedule.delete()
    if task is not None:
        task.delete()


def sync_workflow_schedules(workflow) -> int:
    """Enable or disable the workflow's periodic tasks to follow workflow.is_active; returns how many changed."""
    changed = 0
    for schedule in Schedule.objects.filter(workflow=workflow).exclude(periodic_task=None):
        wanted = bool(schedule.enabled and workflow.is_active)
        changed += (
            PeriodicTask.objects.filter(pk=schedule.periodic_task_id).exclude(enabled=wanted).update(enabled=wanted)
        )
    if changed:
        PeriodicTasks.update_changed()  # a queryset update does not tell beat by itself
    return changed


def run_schedule(schedule_id: int):
    """Beat fired: start a run if the schedule and its workflow are active. Returns the run or None."""
    schedule = Schedule.objects.select_related("workflow", "created_by").filter(pk=schedule_id).first()
    if schedule is None or not schedule.enabled or not schedule.workflow.is_active:
        return None
    now = timezone.now()
    # This runs in a long-lived worker, whose content-type cache goes stale when the database is
    # restored (or flushed between tests); guardian's checks depend on it (as in engine/children.py).
    ContentType.objects.clear_cache()
    refusal = can_run_as(schedule.created_by, schedule.workflow)
    if refusal:
        logger.warning("schedule %s did not start workflow %s: %s", schedule.pk, schedule.workflow_id, refusal)
        Schedule.objects.filter(pk=schedule.pk).update(last_fired_at=now, last_error=refusal[:2000])
        return None
    try:
        execution = start_execution(
            schedule.workflow, dict(schedule.input or {}), acting_user=schedule.created_by, trigger="schedule"
        )
    except (InputError, DefinitionError) as exc:
        logger.warning("schedule %s could not start workflow %s: %s", schedule.pk, schedule.workflow_id, exc)
        Schedule.objects.filter(pk=schedule.pk).update(last_fired_at=now, last_error=str(exc)[:2000])
        return None
    Schedule.objects.filter(pk=schedule.pk).update(last_fired_at=now, last_execution=execution, last_error="")
    return execution


#
# Event triggers
#


def check_condition(condition: Any) -> None:
    """ValueError naming the problem unless `condition` is a declarative condition (or empty)."""
    if condition in (None, {}):
        return

    bare = {k: v for k, v in CONDITION.items() if k != "$id"}
    schema = {**bare, "$defs": {"condition": bare}}
    errors = list(Draft202012Validator(schema).iter_errors(condition))
    if errors:
        raise ValueError(
            'not a valid condition: use {"var": "$.event.payload.x", "op": "eq", "value": …} or all/any/not'
        )
    for field, message in expressions.pattern_problems(condition, "condition"):
        raise ValueError(f"{field}: {message}")
    try:
        expressions.evaluate(condition, {"event": {"type": "", "payload": {}}})
    except expressions.ConditionError as exc:
        raise ValueError(str(exc)) from None
    except Exception:
        pass  # a reference that needs a real payload is fine


def check_input_mapping(mapping: Any) -> None:
    if mapping in (None, {}):
        return
    if not isinstance(mapping, dict):
        raise ValueError("an object of run-input fields to values or $.event… references")
    for ref in expressions.references_in(mapping):
        if not (ref == "$.event" or ref.startswith("$.event.") or ref.startswith("$.event[")):
            raise ValueError(f"{ref}: references here start with $.event (e.g. $.event.payload.order_id)")


def event_context(event_type: str, payload: Any) -> dict:
    return {"event": {"type": event_type, "payload": payload}}


def ingest_event(event_type: str, payload: Any, *, acting_user: User) -> dict:
    """Start every active workflow with an enabled trigger for `event_type` whose condition holds
    and that `acting_user` may change. One run per workflow (its first matching trigger).

    Returns {"started": [execution ids], "skipped": [{"workflow", "trigger", "reason"}]}; workflows
    the caller may not even see are left out of both lists.
    """
    context = event_context(event_type, payload)
    triggers = list(
        EventTrigger.objects.filter(event_type=event_type, enabled=True, workflow__is_active=True)
        .select_related("workflow")
        .order_by("workflow_id", "id")
    )
    ids = {t.workflow_id for t in triggers}
    may_view = (
        set(visible_workflows(acting_user, "view").filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    )
    may_change = (
        set(visible_workflows(acting_user, "change").filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    )
    started: list[int] = []
    skipped: list[dict] = []
    done: set[int] = set()
    now = timezone.now()
    for trigger in triggers:
        wf = trigger.workflow
        if wf.pk in done or wf.pk not in may_view:
            continue
        if wf.pk not in may_change:
            skipped.append(
                {
                    "workflow": wf.pk,
                    "trigger": trigger.pk,
                    "reason": "you may not run this workflow (it needs the change permission)",
                }
            )
            done.add(wf.pk)
            continue
        try:
            if trigger.condition and not expressions.evaluate(trigger.condition, context):
                skipped.append(
                    {"workflow": wf.pk, "trigger": trigger.pk, "reason": "the trigger's condition does not hold"}
                )
                continue
            if trigger.input_mapping:
                run_input = expressions.resolve(trigger.input_mapping, context)
            else:
                run_input = payload if isinstance(payload, dict) else {"payload": payload}
        except (KeyError, expressions.ReferenceError_, expressions.ConditionError) as exc:
            skipped.append(
                {"workflow": wf.pk, "trigger": trigger.pk, "reason": f"the trigger could not be evaluated: {exc}"}
            )
            continue
        try:
            execution = start_execution(wf, run_input, acting_user=acting_user, trigger="event")
        except InputError as exc:
            skipped.append(
                {
                    "workflow": wf.pk,
                    "trigger": trigger.pk,
                    "reason": f"the input is invalid: {exc.field}: {exc.message}",
                }
            )
            continue
        except DefinitionError:
            skipped.append({"workflow": wf.pk, "trigger": trigger.pk, "reason": "the workflow definition is invalid"})
            continue
        EventTrigger.objects.filter(pk=trigger.pk).update(last_fired_at=now)
        started.append(execution.pk)
        done.add(wf.pk)
    return {"started": started, "skipped": skipped}


#
# Inbound webhooks
#


def _refused(endpoint: WebhookEndpoint, request, reason: str) -> None:
    record_audit(
        "webhook_refused",
        request=request,
        target=f"webhook {endpoint.pk}",
        detail={"workflow": endpoint.workflow_id, "reason": reason},
    )


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


@transaction.atomic
def create_webhook(workflow, *, name: str = "", enabled: bool = True, acting_user=None) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it and its secret (shown once, stored encrypted)."""
    secret = new_secret()
    endpoint = WebhookEndpoint(
        workflow=workflow,
        name=name,
        enabled=enabled,
        created_by=acting_user if getattr(acting_user, "is_authenticated", False) else None,
    )
    endpoint.set_secret(secret)
    endpoint.save()
    record_webhook_audit("webhook_created", endpoint, acting_user, {"name": name, "enabled": enabled})
    return endpoint, secret


def rotate_webhook_secret(endpoint: WebhookEndpoint, *, acting_user=None, request=None) -> str:
    secret = new_secret()
    endpoint.set_secret(secret)
    endpoint.save(update_fields=["secret_encrypted"])
    record_webhook_audit("webhook_changed", endpoint, acting_user, {"fields": ["secret"]}, request=request)
    return secret


@transaction.atomic
def delete_webhook(endpoint: WebhookEndpoint, *, acting_user=None, request=None) -> None:
    record_webhook_audit("webhook_deleted", endpoint, acting_user, {}, request=request)
    endpoint.delete()


def record_webhook_audit(action: str, endpoint: WebhookEndpoint, acting_user, detail: dict, *, request=None) -> None:
    """An audit row about an inbound webhook endpoint (never its secret)."""
    record_audit(
        action,
        actor=acting_user,
        request=request,
        target=f"webhook {endpoint.pk}",
        detail={"workflow": endpoint.workflow_id, **detail},
    )


def receive_webhook(token: str, body: bytes, signature: str, timestamp: str = "", *, request=None):
    """Verify and start: returns the new execution. Raises TriggerError: 404 unknown or disabled
    token, 401 bad or missing signature or a timestamp outside WB_WEBHOOK_TOLERANCE_SECONDS,
    409 a delivery already received (a replay) or an inactive workflow, 400 a body that is not a
    JSON object or breaks the input schema. Refusals of a signed request are audited."""
    endpoint = (
        WebhookEndpoint.objects.select_related("workflow", "created_by").filter(token=token, enabled=True).first()
    )
    if endpoint is None:
        raise TriggerError(404, "No such webhook.")
    try:
        secret = endpoint.get_secret()
    except SecretUnreadable:
        logger.error("webhook %s: its secret cannot be decrypted with the configured keys", endpoint.pk)
        raise TriggerError(401, "the signature cannot be checked") from None
    tolerance = settings.WB_WEBHOOK_TOLERANCE_SECONDS
    if not timestamp.strip().isdigit():
        _refused(endpoint, request, "no timestamp")
        raise TriggerError(401, "missing or bad X-Workflow-Timestamp (Unix seconds, covered by the signature)")
    if abs(time.time() - int(timestamp)) > tolerance:
        _refused(endpoint, request, "stale timestamp")
        raise TriggerError(
            401, f"X-Workflow-Timestamp is more than {tolerance} s away from now: old deliveries are refused"
        )
    if not signature or not verify(secret, body, signature, timestamp, tolerance=tolerance):
        _refused(endpoint, request, "bad signature")
        raise TriggerError(
            401, 'missing or bad X-Workflow-Signature (sha256=<hex HMAC-SHA256 of "<timestamp>." + the raw body>)'
        )
    # A signature is good for one delivery: remember it for longer than the tolerance window
    # (cache.add is atomic in Redis, so two racing copies cannot both pass).
    if not cache.add(f"webhook-seen:{endpoint.pk}:{signature}", 1, timeout=2 * tolerance + 60):
        _refused(endpoint, request, "replay")
        raise TriggerError(
            409, "this delivery was already received (same timestamp and signature): replays are refused"
        )
    if not endpoint.workflow.is_active:
        raise TriggerError(409, "the workflow is inactive")
    refusal = can_run_as(endpoint.created_by, endpoint.workflow)
    if refusal:
        _refused(endpoint, request, "creator may not run")
        raise TriggerError(403, f"this webhook can no longer start runs: {refusal}")
    try:
        data = jsontext.loads(body or b"{}")
    except jsontext.JSONInputError as exc:
        raise TriggerError(400, exc.message, field="body" + (f".{exc.field}" if exc.field else "")) from None
    except ValueError:
        raise TriggerError(400, "the body is not JSON", field="body") from None
    if not isinstance(data, dict):
        raise TriggerError(400, "the body must be a JSON object (it becomes the run input)", field="body")
    try:
        execution = start_execution(endpoint.workflow, data, acting_user=endpoint.created_by, trigger="webhook")
    except InputError as exc:
        raise TriggerError(400, exc.message, field=exc.field) from None
    except DefinitionError:
        raise TriggerError(409, "the workflow definition is invalid") from None
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(last_used_at=timezone.now())
    return execution
