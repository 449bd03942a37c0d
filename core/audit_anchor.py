"""The audit chain's anchor outside the database: signed checkpoints in an append-only file.

Whoever can rewrite the audit tables (a database superuser, a restored backup) can delete the whole
chain and its head, or truncate the tail and put an old, validly signed head row back. Neither leaves a
trace inside the database. So after each transaction that appended events commits, the head as committed
(sequence, hash, time) is HMAC-signed with ``AUDIT_HMAC_KEY`` and appended as one JSON line to
``AUDIT_CHECKPOINT_PATH``: a file the database role cannot write. In production that is a volume of its
own, mounted only into the app, ideally with the append-only attribute (``chattr +a``) so that even the
app cannot rewrite old lines. ``core.audit.verify_chain`` compares the chain against the highest valid
checkpoint. See docs/decisions/003-audit-chain.md.

Each line is written before the request goes on, so it is in the operating system's hands before anyone
could tamper with the rows it anchors; making it durable on disk (fsync) is left to a background thread
of the process that coalesces the lines written meanwhile (``DeferredSync``), so an audited staff read does
not wait on the disk. A power loss in that window (milliseconds) can lose the newest lines, which leaves
an older, still valid anchor.

Only a file store exists; a Redis (persistent, append-only) store is not yet built.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    sequence: int
    hash: str
    at: datetime
    line: int = 0


def _path() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_PATH)


def _signature(key: bytes, sequence: int, head_hash: str, at: str, kind: str = "checkpoint") -> str:
    return hmac.new(key, f"{kind}|{sequence}|{head_hash}|{at}".encode(), hashlib.sha256).hexdigest()


class DeferredSync:
    """fsyncs checkpoint files on a daemon thread, one fsync for every line written since the last.

    fsync flushes a file's data whichever descriptor wrote it, so the thread opens the file itself.
    After a fork the child starts its own thread (the parent's does not exist there); at exit
    whatever is pending is synced.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._dirty: set[Path] = set()
        self._thread: threading.Thread | None = None

    def request(self, path: Path) -> None:
        with self._lock:
            self._dirty.add(path)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-checkpoint-sync", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Sync every file written since the last sync, now (also called at exit)."""
        with self._lock:
            paths, self._dirty = self._dirty, set()
        for path in paths:
            try:
                descriptor = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
            except OSError:
                logger.exception("audit checkpoint not synced to disk", extra={"path": str(path)})


deferred_sync = DeferredSync()
os.register_at_fork(after_in_child=deferred_sync._reset)
atexit.register(deferred_sync.flush)


def checkpoint_append(
    *, key: bytes, sequence: int, head_hash: str, rekeyed: bool = False, sync: bool = True
) -> Checkpoint:
    """Append one signed checkpoint line; with ``sync``, flush it to disk before returning, else leave
    the fsync to ``deferred_sync``.

    ``rekeyed`` marks the checkpoint the audit-key rotation writes after re-chaining every event under
    the new key: readers ignore the lines before the newest valid one of these, which were signed with
    the retired key and name hashes the chain no longer has (docs/decisions/027-hardening.md).
    """
    at = timezone.now().isoformat()
    kind = "rekeyed" if rekeyed else "checkpoint"
    signature = _signature(key, sequence, head_hash, at, kind)
    entry = {"sequence": sequence, "hash": head_hash, "at": at, "signature": signature}
    if rekeyed:
        entry["rekeyed"] = True
    line = json.dumps(entry, separators=(",", ":"))
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, (line + "\n").encode())
        if sync:
            os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if not sync:
        deferred_sync.request(path)
    return Checkpoint(sequence=sequence, hash=head_hash, at=datetime.fromisoformat(at))


def checkpoints_read(*, keys: list[bytes]) -> tuple[Checkpoint | None, list[str]]:
    """The highest-sequence checkpoint whose signature holds under one of ``keys``, and a description of
    every bad line. Lines before the newest valid re-keyed checkpoint are superseded and not read."""
    path = _path()
    if not path.exists():
        return None, []
    latest: Checkpoint | None = None
    bad: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
                sequence, head_hash, at = int(entry["sequence"]), str(entry["hash"]), str(entry["at"])
                signature = str(entry["signature"])
                kind = "rekeyed" if entry.get("rekeyed") is True else "checkpoint"
            except (ValueError, KeyError, TypeError, AttributeError):
                bad.append(f"checkpoint line {number} is unreadable")
                continue
            if not any(hmac.compare_digest(_signature(k, sequence, head_hash, at, kind), signature) for k in keys):
                bad.append(f"checkpoint line {number} signature invalid (checkpoint file was tampered with)")
                continue
            checkpoint = Checkpoint(sequence=sequence, hash=head_hash, at=datetime.fromisoformat(at), line=number)
            if kind == "rekeyed":
                latest, bad = checkpoint, []  # everything before was signed for the retired key's chain
            elif latest is None or sequence > latest.sequence:
                latest = checkpoint
    return latest, bad
