"""Log records carry the request id, the organisation and the actor; in production they are JSON.

The fields are ids only (request id, organisation id, "user:<id>", "api_key:<id>", task and
operation ids): a log line never names a person, an e-mail address or a secret. Messages are
written by our code, which logs ids too; third-party messages pass through as they are.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from .requestid import get_log_context, get_request_id
from .tenancy import current_org_ids

# Attributes every LogRecord has; anything else on a record was passed in ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = get_request_id()
        return True


# A path segment that looks like a credential: 20 or more token characters, not a UUID. Links in e-mails
# carry their token in the path (invitations, e-mail verification, password reset), and Django logs the
# path of every 4xx and 5xx answer.
_TOKEN_SEGMENT = re.compile(
    r"(?<=/)(?![0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?:/|$|\s))"
    r"[A-Za-z0-9_\-.:=]{20,}(?=/|$|\s|\?)"
)


def redact_paths(text: str) -> str:
    return _TOKEN_SEGMENT.sub("[redacted]", text)


class RedactTokensFilter(logging.Filter):
    """Replaces token-like path segments in a record's message (on the loggers that log request paths)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record goes out as it came; logging reports it itself
            return True
        redacted = redact_paths(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
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
                # Objects such as Django's request print their path, which may carry a link's token.
                entry[key] = value if isinstance(value, (int, float, bool, type(None))) else redact_paths(str(value))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
