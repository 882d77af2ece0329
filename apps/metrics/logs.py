"""Log formatting: plain lines for development, one JSON object per line with LOG_FORMAT=json.

Both carry the correlation id (see apps.metrics.correlation). Imported by the
LOGGING setting, so nothing here may import models.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pythonjsonlogger.json

from .correlation import get_correlation_id


class CorrelationIdFilter(logging.Filter):
    """Sets `record.correlation_id` ("-" when there is none), for both formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", None):
            record.correlation_id = get_correlation_id() or "-"
        return True


class JsonFormatter(pythonjsonlogger.json.JsonFormatter):
    """One JSON object per line (python-json-logger): ts (UTC, ISO 8601), level, logger, message,
    correlation_id (null outside a request or task), process, thread, the `extra=` fields, and
    exc_info / stack_info as text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "threadName": "thread"})
        super().__init__(["levelname", "name", "message", "correlation_id", "process", "threadName"], **kwargs)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["ts"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        super().add_fields(log_data, record, message_dict)
        cid = getattr(record, "correlation_id", None)
        if cid in (None, "-"):  # a record that did not pass the handler's CorrelationIdFilter
            cid = get_correlation_id() or None
        log_data["correlation_id"] = cid
