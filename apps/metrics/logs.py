"""Log formatting: plain lines for development, one JSON object per line with LOG_FORMAT=json.

Both carry the correlation id (see apps.metrics.correlation). Imported by the
LOGGING setting, so nothing here may import models.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from .correlation import get_correlation_id

# Attributes every LogRecord has: anything else was passed with `extra=` and is emitted too.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "correlation_id"}


class CorrelationIdFilter(logging.Filter):
    """Sets `record.correlation_id` ("-" when there is none), for both formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", None):
            record.correlation_id = get_correlation_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, message, correlation_id,
    the `extra=` fields, and exc_info as text."""

    def format(self, record: logging.LogRecord) -> str:
        cid = getattr(record, "correlation_id", None)
        if cid in (None, "-"):
            cid = get_correlation_id() or None
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": cid,
            "process": record.process,
            "thread": record.threadName,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
