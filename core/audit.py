"""The audit chain: the state changes services record, HMAC-chained.

Services record their writes here (``audit_record`` naming the actor). Staff reads and changes in
the admin are recorded through one path, ``accounts.admin_grants.GrantScopedAdmin``, each naming
the staff grant that allowed it; inside it, ``staff_grants_in_force`` adds that grant to the events
services write for staff too.

Each event's hash is HMAC(key, previous hash + canonical event). The key lives
outside the database (AUDIT_HMAC_KEY; during a rotation the retiring key is
AUDIT_HMAC_PREVIOUS_KEY and ``chain_rekey`` moves the chain to the new one), so
someone with write access to the tables cannot edit or remove an event without
``verify_audit`` noticing. The chain head row is signed too, but a database superuser can still delete everything or put
an old, validly signed head back after truncating the tail; so after each commit the
head is also written as a signed checkpoint outside the database
(``core.audit_anchor``), and ``verify_chain`` compares the chain against the latest one.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock

from django.conf import settings
from django.db import router, transaction
from django.utils import timezone

from core.audit_anchor import checkpoint_append, checkpoints_read
from core.blind_index import normalise_ip
from core.requestid import get_client_ip, get_request_id
from core.tenancy import unscoped_no_tenant

from .models import AuditChainHead, AuditEvent

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Actor:
    type: str
    id: str = ""
    metadata: dict = field(default_factory=dict)

    @classmethod
    def user(cls, user) -> Actor:
        return cls(AuditEvent.ActorType.USER, str(user.pk))

    @classmethod
    def staff(cls, user, grant=None) -> Actor:
        return cls(AuditEvent.ActorType.STAFF, str(user.pk), {"grant": str(grant.pk)} if grant else {})

    @classmethod
    def api_key(cls, key) -> Actor:
        return cls(AuditEvent.ActorType.API_KEY, str(key.pk))

    @classmethod
    def system(cls, component: str) -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, component)


_staff_grants: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("staff_grants", default=None)


@contextmanager
def staff_grants_in_force(grant_ids_by_org: dict[str, str]) -> Iterator[None]:
    """Inside, a staff actor's event in an organisation names the grant (organisation id -> grant id)
    that allowed it, unless the actor already names one."""
    token = _staff_grants.set(grant_ids_by_org)
    try:
        yield
    finally:
        _staff_grants.reset(token)


def _decode(raw: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError:
        return raw.encode()


def _key() -> bytes:
    """The active key: every new hash, head signature and checkpoint is made with it."""
    return _decode(settings.AUDIT_HMAC_KEY)


def _keys() -> list[bytes]:
    """The keys verification accepts: the active one, and the retiring one while a rotation is under way."""
    previous = getattr(settings, "AUDIT_HMAC_PREVIOUS_KEY", "")
    return [_key(), _decode(previous)] if previous else [_key()]


def _canonical(event: AuditEvent) -> bytes:
    body = {
        "sequence": event.sequence,
        "occurred_at": event.occurred_at.isoformat(),
        "organization": str(event.organization_id or ""),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        # The plaintext (decrypted on read), as before the column was encrypted: chains written
        # before and after the change verify alike.
        "ip_address": event.ip_address or "",
        "request_id": event.request_id,
        "metadata": event.metadata,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def compute_hash(previous_hash: str, event: AuditEvent, key: bytes | None = None) -> str:
    return hmac.new(key or _key(), previous_hash.encode() + b"|" + _canonical(event), hashlib.sha256).hexdigest()


def _sign_head(sequence: int, head_hash: str, key: bytes | None = None) -> str:
    return hmac.new(key or _key(), f"head|{sequence}|{head_hash}".encode(), hashlib.sha256).hexdigest()


def _hash_holds(event: AuditEvent) -> bool:
    return any(hmac.compare_digest(compute_hash(event.previous_hash, event, key), event.hash) for key in _keys())


@dataclass(frozen=True)
class AuditEntry:
    """One event for ``audit_record_many``: what ``audit_record`` takes besides the actor."""

    action: str
    organization: object = None
    target: object = None
    metadata: dict | None = None


def audit_record(
    *,
    actor: Actor,
    action: str,
    organization=None,
    target=None,
    metadata: dict | None = None,
) -> AuditEvent:
    """Append an event to the chain, inside the caller's transaction."""
    [event] = audit_record_many(actor=actor, entries=[AuditEntry(action, organization, target, metadata)])
    return event


def audit_record_many(*, actor: Actor, entries: Sequence[AuditEntry]) -> list[AuditEvent]:
    """Append events in order, inside the caller's transaction: the chain as many ``audit_record``
    calls would leave it, written with one lock of the head, one insert and one update of the head,
    so a job writing an event per document (the billing run) does not pay three round trips each."""
    if not entries:
        return []
    # The connection the event is written on: the system one inside unscoped_no_tenant() (key
    # rotation), so the transaction and its after-commit checkpoint are that connection's.
    using = router.db_for_write(AuditEvent)
    ip_address = normalise_ip(get_client_ip())  # canonical text, so the hash covers what decrypting gives back
    request_id = get_request_id() if get_request_id() != "-" else ""
    # No savepoint inside a caller's transaction: a failed append must undo the caller's write too, never
    # be rolled back alone, and a savepoint is two more round trips on every event.
    with transaction.atomic(using=using, savepoint=False):
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        events = []
        sequence, previous_hash = head.sequence, head.hash
        for entry in entries:
            organization_id = getattr(entry.organization, "pk", entry.organization)
            sequence += 1
            event = AuditEvent(
                sequence=sequence,
                occurred_at=timezone.now(),
                organization_id=organization_id,
                actor_type=actor.type,
                actor_id=actor.id,
                action=entry.action,
                target_type=type(entry.target).__name__ if entry.target is not None else "",
                target_id=str(entry.target.pk) if entry.target is not None else "",
                ip_address=ip_address,
                request_id=request_id,
                metadata=_metadata(actor, organization_id, entry.metadata),
                previous_hash=previous_hash,
            )
            event.hash = previous_hash = compute_hash(previous_hash, event)
            events.append(event)
        # The base manager, the one save() writes through: events of no organisation are written too.
        AuditEvent._base_manager.bulk_create(events)
        head.sequence, head.hash = sequence, previous_hash
        head.signature = _sign_head(head.sequence, head.hash)
        head.save()
        transaction.on_commit(checkpoint_after_commit, using=using)
        return events


def _metadata(actor: Actor, organization_id, metadata: dict | None) -> dict:
    merged = {**actor.metadata, **(metadata or {})}
    grants = _staff_grants.get()
    if actor.type == AuditEvent.ActorType.STAFF and grants and "grant" not in merged and organization_id:
        grant_id = grants.get(str(organization_id))
        if grant_id:
            merged["grant"] = grant_id
    return merged


_checkpointed: dict[Path, int] = {}
_checkpoint_lock = Lock()


def checkpoint_after_commit() -> None:
    """Anchor the committed head outside the database: one checkpoint per commit batch.

    Every ``audit_record`` in a transaction registers this; the first callback after the commit
    writes the head as committed, and the others find it already written by this process.
    A failure to write is logged, never raised: the business transaction has already committed.
    """
    head = AuditChainHead.objects.filter(pk=1).values_list("sequence", "hash").first()
    if head is None:
        return
    sequence, head_hash = head
    path = Path(settings.AUDIT_CHECKPOINT_PATH)
    with _checkpoint_lock:
        if _checkpointed.get(path, 0) >= sequence:
            return
        try:
            checkpoint_append(key=_key(), sequence=sequence, head_hash=head_hash)
        except OSError:
            logger.exception("audit checkpoint not written", extra={"sequence": sequence, "path": str(path)})
            return
        _checkpointed[path] = sequence


@dataclass(frozen=True)
class AuditProblem:
    sequence: int | None
    problem: str

    def __str__(self) -> str:
        return self.problem if self.sequence is None else f"event #{self.sequence}: {self.problem}"


def verify_chain(batch_size: int = 2000) -> Iterator[AuditProblem]:
    """Walk the whole chain in sequence order and yield every inconsistency found.

    The chain must also reach the latest checkpoint written outside the database, with the
    same hash at that sequence: deleting everything, or truncating and restoring an old head,
    is caught there.
    """
    checkpoint, bad_lines = checkpoints_read(keys=_keys())
    for line in bad_lines:
        yield AuditProblem(None, line)
    checkpoint_hash = None
    expected_sequence = 1
    previous_hash = GENESIS_HASH
    last_sequence = 0
    cursor = 0
    while True:
        # Every organisation's events and those of none: read as the system role (row-level security).
        with unscoped_no_tenant():
            batch = list(AuditEvent.unscoped_objects.filter(sequence__gt=cursor).order_by("sequence")[:batch_size])
        if not batch:
            break
        for event in batch:
            while expected_sequence < event.sequence:
                yield AuditProblem(expected_sequence, "missing (deleted)")
                expected_sequence += 1
            if event.previous_hash != previous_hash:
                yield AuditProblem(
                    event.sequence, "previous-hash link broken (an earlier event was altered or removed)"
                )
            if not _hash_holds(event):
                yield AuditProblem(event.sequence, "content does not match its hash (edited)")
            if checkpoint is not None and event.sequence == checkpoint.sequence:
                checkpoint_hash = event.hash
            previous_hash = event.hash
            expected_sequence = event.sequence + 1
            last_sequence = event.sequence
        cursor = batch[-1].sequence
    if checkpoint is not None:
        anchored = f"the checkpoint of {checkpoint.at.isoformat()} recorded event #{checkpoint.sequence}"
        if last_sequence == 0:
            yield AuditProblem(None, f"the chain is empty but {anchored} (the chain was deleted)")
        elif last_sequence < checkpoint.sequence:
            yield AuditProblem(
                checkpoint.sequence,
                f"missing: the chain ends at event #{last_sequence} but {anchored} "
                "(the tail was removed and an older head put back)",
            )
        elif checkpoint_hash is not None and not hmac.compare_digest(checkpoint_hash, checkpoint.hash):
            yield AuditProblem(checkpoint.sequence, f"hash differs from {anchored} (the chain was rewritten)")
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        if last_sequence:
            yield AuditProblem(last_sequence, "chain head is missing")
        return
    if not any(hmac.compare_digest(_sign_head(head.sequence, head.hash, k), head.signature or "") for k in _keys()):
        yield AuditProblem(head.sequence, "chain head signature invalid (head was tampered with)")
    if head.sequence > last_sequence:
        for missing in range(last_sequence + 1, head.sequence + 1):
            yield AuditProblem(missing, "missing (chain truncated)")
    elif head.hash != previous_hash and head.sequence == last_sequence:
        yield AuditProblem(head.sequence, "newest event does not match the chain head")


def latest_checkpoint():
    """The highest valid checkpoint outside the database, or None before the first commit."""
    return checkpoints_read(keys=_keys())[0]


class RekeyRefused(Exception):
    """The chain does not verify, so it is not re-chained: that would launder the tampering."""


def chain_rekey(batch_size: int = 2000) -> int:
    """Re-chain every event under the active key, after a rotation of AUDIT_HMAC_KEY.

    Holds the chain head's lock for the whole run (new events wait), refuses unless the chain verifies
    under the configured keys first, rewrites each event's link and hash in sequence order, re-signs the
    head, records ``audit.key_rotated``, and after the commit appends a re-keyed checkpoint that
    supersedes the checkpoints signed with the retired key. Returns the number of events re-chained.
    Needs UPDATE on the audit table: run it as the table owner (the migration role).
    """
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        problems = list(verify_chain(batch_size=batch_size))
        if problems:
            raise RekeyRefused("; ".join(str(p) for p in problems[:20]))
        previous_hash, cursor, count = GENESIS_HASH, 0, 0
        while True:
            batch = list(AuditEvent.unscoped_objects.filter(sequence__gt=cursor).order_by("sequence")[:batch_size])
            if not batch:
                break
            for event in batch:
                event.previous_hash = previous_hash
                event.hash = compute_hash(previous_hash, event)
                previous_hash = event.hash
            AuditEvent.unscoped_objects.bulk_update(batch, ["previous_hash", "hash"])
            cursor, count = batch[-1].sequence, count + len(batch)
        head.hash = previous_hash
        head.signature = _sign_head(head.sequence, head.hash)
        head.save()
        audit_record(actor=Actor.system("audit-key-rotation"), action="audit.key_rotated", metadata={"events": count})
        transaction.on_commit(_rekeyed_checkpoint)
    return count


def _rekeyed_checkpoint() -> None:
    sequence, head_hash = AuditChainHead.objects.filter(pk=1).values_list("sequence", "hash").get()
    checkpoint_append(key=_key(), sequence=sequence, head_hash=head_hash, rekeyed=True)
