"""The correlation id: one id carried from an HTTP request through every Celery task it
causes to the runs it starts (Execution.correlation_id), and stamped on every log line.

Web: CorrelationIdMiddleware takes X-Request-ID (or makes one), stores it in a
contextvar and echoes it in the response. Celery: `before_task_publish` copies the
current id into the message headers; `task_prerun` restores it in the worker (and
`task_postrun` clears it), so tasks sent by tasks keep it too.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from celery.signals import before_task_publish, task_postrun, task_prerun

HEADER = "X-Request-ID"
# Celery's own `correlation_id` property is the task id: ours travels under another name.
TASK_HEADER = "wb_correlation_id"
_VALID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")

_current: ContextVar[str] = ContextVar("wb_correlation_id", default="")
task_logger = logging.getLogger("workflow.task")


def get_correlation_id() -> str:
    """The id of the request or task being served, "" outside of one."""
    return _current.get()


def set_correlation_id(value: str):
    """Set the id for this context; returns the token for `reset_correlation_id`."""
    return _current.set(value)


def reset_correlation_id(token) -> None:
    _current.reset(token)


def clean_or_new(raw: str | None) -> str:
    """A client's X-Request-ID when it is a sane token (<= 64 of [A-Za-z0-9._:-]), else a new one."""
    if raw and _VALID.match(raw):
        return raw
    return uuid.uuid4().hex


#
# Celery
#


@before_task_publish.connect(dispatch_uid="wb-correlation-publish")
def _add_to_headers(headers: dict | None = None, **_: object) -> None:
    cid = _current.get()
    if cid and headers is not None:
        headers[TASK_HEADER] = cid


@task_prerun.connect(dispatch_uid="wb-correlation-prerun")
def _restore(task_id: str = "", task=None, **_: object) -> None:
    cid = ""
    if task is not None:
        cid = (
            getattr(task.request, TASK_HEADER, None)
            or (task.request.get(TASK_HEADER) if hasattr(task.request, "get") else "")
            or ""
        )
    _current.set(cid if cid and _VALID.match(cid) else "")
    if cid:
        task_logger.info("task %s[%s] started", getattr(task, "name", "?"), task_id)


@task_postrun.connect(dispatch_uid="wb-correlation-postrun")
def _clear(task_id: str = "", task=None, state: str | None = None, **_: object) -> None:
    if _current.get():
        task_logger.info("task %s[%s] finished: %s", getattr(task, "name", "?"), task_id, state)
    _current.set("")
