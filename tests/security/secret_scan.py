"""A pytest plugin (loaded by the root conftest.py) that reads every log record the suite produces and
fails the test during which a secret was logged (ASVS 16.2.5; the auditor's A31).

Cheap enough to run always: one handler on the root logger (and on the loggers that do not
propagate to it, such as django.request), a few regular expressions per record. Records below a
logger's level never reach a handler; tests/security/test_secrets_in_logs.py runs the sign-in, MFA,
API-key and token flows with every logger at DEBUG for that reason.

What counts as a secret: an Authorization header or a bearer credential, a JSON Web Token, an API
key in the portal's format, a password or TOTP code in a key=value or JSON shape, and the literal
passwords the test factories and demo use. A test that logs one of them fails at teardown with the
record quoted.
"""

from __future__ import annotations

import logging
import re

import pytest

PATTERNS = {
    "Authorization header": re.compile(r"(?i)\bauthorization\b['\"]?\s*[:=]\s*['\"]?(bearer|basic|token)\s+\S"),
    "bearer credential": re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{12,}"),
    "JSON Web Token": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.?"),
    "API key": re.compile(r"\bclp_[a-z0-9]{10}_[A-Za-z0-9-]{16,}"),
    "password value": re.compile(
        r"(?i)['\"]?\b(password|passwd|new_password\d?|old_password|client_secret|refresh_token|access_token)"
        r"\b['\"]?\s*[:=]\s*['\"]?(?!\*|\[filtered\]|<redacted>|None\b|['\"])[^\s'\",}]{4,}"
    ),
    # Named fields only: Microsoft's error codes are six digits too ("code": 900421).
    "one-time code": re.compile(r"(?i)['\"]?\b(otp_token|totp|totp_code|mfa_code)\b['\"]?\s*[:=]\s*['\"]?\d{6}\b"),
}
# Passwords the factories and the demo seed use: if one appears anywhere in a log, it was logged.
LITERALS = ("correct-horse-battery-staple", "demo-staff-2026", "demo-owner-2026")

_hits: list[str] = []


def scan_text(text: str) -> list[str]:
    found = [name for name, pattern in PATTERNS.items() if pattern.search(text)]
    found += [f"password literal {literal[:4]}…" for literal in LITERALS if literal in text]
    return found


class SecretScanHandler(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.NOTSET)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is the logging module's problem, not a leak
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]!r}"
        text += " " + " ".join(
            str(value) for key, value in record.__dict__.items() if key not in _STANDARD and not key.startswith("_")
        )
        found = scan_text(text)
        if found:
            _hits.append(f"{record.name} {record.levelname} ({', '.join(found)}): {text[:300]!r}")


_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}
HANDLER = SecretScanHandler()


def install() -> None:
    """Attach the handler to the root logger and to every configured logger that does not propagate."""
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for logger in loggers:
        if HANDLER not in logger.handlers:
            logger.addHandler(HANDLER)


def take_hits() -> list[str]:
    hits = _hits[:]
    _hits.clear()
    return hits


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    install()  # again per test: a test's settings may have reconfigured logging


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when != "teardown":
        return
    hits = take_hits()
    if hits and not item.get_closest_marker("logs_secrets_on_purpose"):
        report.outcome = "failed"
        report.longrepr = "Secrets were written to the logs during this test:\n  " + "\n  ".join(hits)
