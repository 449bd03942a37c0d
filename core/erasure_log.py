"""The erasure log: every crypto-shredded key scope, written outside the database.

A restore brings back the database as it was at the backup, including data keys destroyed since.
This log survives the restore (it lives on its own volume, ``ERASURE_LOG_PATH``), and
``manage.py replay_erasures --since <backup time>`` destroys those keys again.

Each line is JSON, authenticated with the audit HMAC key, so a forged or edited line is refused
on replay. The line is written and flushed to disk *before* the database change commits: if the
commit then fails, a replay destroys a key whose erasure was already requested, which errs on the
side the person asked for.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings


@dataclass(frozen=True)
class Erasure:
    at: datetime
    scope: str
    actor: str


def _path() -> Path:
    return Path(settings.ERASURE_LOG_PATH)


def _signature(body: str) -> str:
    return hmac.new(settings.AUDIT_HMAC_KEY.encode(), body.encode(), hashlib.sha256).hexdigest()


def erasure_log_append(*, scope: str, actor: str, at: datetime) -> None:
    body = json.dumps({"at": at.isoformat(), "scope": scope, "actor": actor}, sort_keys=True)
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps({"entry": body, "mac": _signature(body)}) + "\n")
        log.flush()
        os.fsync(log.fileno())


def erasure_log_since(since: datetime) -> tuple[list[Erasure], list[int]]:
    """Erasures at or after ``since`` in log order, and the numbers of lines that failed authentication."""
    path = _path()
    if not path.exists():
        return [], []
    entries, bad = [], []
    with open(path, encoding="utf-8") as log:
        for number, line in enumerate(log, start=1):
            try:
                wrapper = json.loads(line)
                body = wrapper["entry"]
                if not hmac.compare_digest(wrapper["mac"], _signature(body)):
                    raise ValueError("bad mac")
                entry = json.loads(body)
                at = datetime.fromisoformat(entry["at"])
            except (ValueError, KeyError, TypeError):
                bad.append(number)
                continue
            if at >= since:
                entries.append(Erasure(at=at, scope=entry["scope"], actor=entry["actor"]))
    return entries, bad
