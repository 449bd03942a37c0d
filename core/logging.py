"""Log records carry the request id, the organisation and the actor; in production they are JSON.

The fields are ids only (request id, organisation id, "user:<id>", "api_key:<id>", task and
operation ids): a log line never names a person, an e-mail address or a secret. Messages are
written by our code, which logs ids too; third-party messages pass through as they are.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from .requestid import get_log_context, get_request_id
from .tenancy import current_org_ids

# Attributes every LogRecord has; anything else on a record was passed in ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = get_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, organisation, bound ids, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or get_request_id(),
        }
        org_ids = current_org_ids()
        if org_ids:
            entry["organization_id"] = ",".join(sorted(str(org) for org in org_ids))
        entry.update(get_log_context())
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
